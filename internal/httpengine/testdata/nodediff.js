// Prints, as JSON, the events node:http emits for one GET to 127.0.0.1:PORT,
// in the gateway's notation ("req:socket", "res:error(ECONNRESET)", ...).
// Used by nodediff_ext_test.go to compare the engine with Node itself.
const http = require('http');
const port = Number(process.argv[2]);
const log = [];
const req = http.request({ host: '127.0.0.1', port, path: '/', agent: new http.Agent() });
for (const ev of ['socket', 'finish', 'abort', 'timeout', 'information', 'continue', 'upgrade', 'connect'])
  req.on(ev, () => log.push('req:' + ev));
req.on('error', (e) => log.push('req:error(' + e.code + ')'));
req.on('response', (res) => {
  log.push('req:response');
  res.on('data', () => { if (log[log.length - 1] !== 'res:data') log.push('res:data'); });
  res.on('end', () => log.push('res:end'));
  res.on('aborted', () => log.push('res:aborted'));
  res.on('error', (e) => log.push('res:error(' + e.code + ')'));
  res.on('close', () => log.push('res:close'));
});
req.on('close', () => {
  log.push('req:close');
  // Let the response's own close and error events land, then report.
  setTimeout(() => { process.stdout.write(JSON.stringify(log)); process.exit(0); }, 100);
});
req.end();
