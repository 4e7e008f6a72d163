const http = require('http'); const net = require('net');
function trace(name, req, log) {
  for (const ev of ['socket','response','finish','close','error','abort','timeout','information','continue','upgrade','connect','prefinish'])
    req.on(ev, (a) => { log.push('req:'+ev + (ev==='error' ? '('+a.code+' '+a.message+')' : '')); if (ev==='response') { for (const e2 of ['data','end','close','error','aborted']) a.on(e2, (x)=>log.push('res:'+e2+(e2==='error'?'('+x.code+' '+x.message+')':''))); if (req._onResp) req._onResp(a);} });
}
function server(script) { return new Promise(r => { const s = net.createServer(c => script(c, s)); s.listen(0, '127.0.0.1', () => r(s)); }); }
async function run(name, script, drive, agent) {
  const s = await server(script); const log = [];
  await new Promise(done => {
    const t = setTimeout(() => { log.push('<<TIMEOUT>>'); done(); }, 1500);
    const req = http.request({host:'127.0.0.1', port: name==='conn refused' ? 1 : s.address().port, path:'/', method: 'GET', agent: agent||false, signal: (globalThis.__ac = new AbortController()).signal}); req.ac = globalThis.__ac;
    trace(name, req, log); req.on('close', ()=> setTimeout(()=>{clearTimeout(t);done()}, 80)); drive(req);
  });
  s.close(); console.log(name.padEnd(28), log.join(' '));
}
const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello';
(async () => {
  await run('success', c => c.once('data', () => c.end(OK)), r => { r._onResp = res => res.resume(); r.end(); });
  await run('conn refused', c => {}, r => { r.end(); }, new http.Agent()).catch(()=>{});
  await run('close before response', c => c.once('data', () => c.destroy()), r => r.end());
  await run('close after response', c => c.once('data', () => c.end('HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhel')), r => { r._onResp = res => res.resume(); r.end(); });
  await run('destroy before socket', c => {}, r => { r.destroy(); });
  await run('destroy before connected', c => {}, r => { r.on('socket', () => r.destroy()); });
  await run('destroy after response', c => c.once('data', () => c.write('HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhel')), r => { r._onResp = res => { res.resume(); res.once('data', ()=> r.destroy()); }; r.end(); });
  await run('destroy(err) after resp', c => c.once('data', () => c.write('HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhel')), r => { r._onResp = res => { res.resume(); res.once('data', ()=> r.destroy(Object.assign(new Error('boom'),{code:'EBOOM'}))); }; r.end(); });
  await run('abort before socket', c => {}, r => { r.abort(); });
  await run('abort before connected', c => {}, r => { r.on('socket', () => r.abort()); });
  await run('abort after response', c => c.once('data', () => c.write('HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhel')), r => { r._onResp = res => { res.resume(); res.once('data', ()=> r.abort()); }; r.end(); });
  await run('1xx + 100', c => c.once('data', () => c.end('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n' + OK)), r => { r._onResp = res => res.resume(); r.end(); });
  await run('timeout', c => c.once('data', () => setTimeout(()=>c.end(OK), 300)), r => { r._onResp = res => res.resume(); r.setTimeout(100); r.end(); });
  await run('abort signal after resp', c => c.once('data', () => c.write('HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhel')), r => { r._onResp = res => { res.resume(); res.once('data', ()=> r.ac.abort()); }; r.end(); });
  process.exit(0);
})();
