'use strict';
// loadgen.js: the Node arms' client for the benchmark harness
// (bench/cmd/benchrun). Usage: node loadgen.js http|undici [UNDICI_DIR].
//
// It reads one JSON command per line on stdin and answers one JSON line on
// stdout:
//   {"op":"hello"}              -> {"ready":true}
//   {"op":"run","job":{...}}    -> {"requests","errors","bytes","elapsed_ns","lat":[µs...],"err_sample"}
//   {"op":"release"}            -> {"ok":true}  (closes the fresh_pool agent)
// The job's fields are those of the harness's job struct (load.go).

const http = require('node:http');
const readline = require('node:readline');
const { once } = require('node:events');

const clientKind = process.argv[2];
const undici = clientKind === 'undici' ? require(process.argv[3]) : null;

const CHUNK = Buffer.alloc(64 * 1024);
for (let i = 0; i < CHUNK.length; i++) CHUNK[i] = 97 + (i % 26);

// Pools, one per kind: keep-alive, no keep-alive, and the fresh pool a
// fresh_pool job opens and "release" closes.
const pools = new Map();

function poolKey(job) {
  if (job.fresh_pool) return 'fresh';
  return job.keep_alive ? 'keepalive' : 'close';
}

function newPool(job) {
  if (undici) {
    return new undici.Agent({
      keepAliveTimeout: 300e3,
      keepAliveMaxTimeout: 600e3,
      connections: null, // no per-origin limit
      pipelining: 1,
    });
  }
  return new http.Agent({
    keepAlive: job.keep_alive,
    maxSockets: Infinity,
    maxFreeSockets: 8192, // Node's default 256 is fewer than idle_1k needs
    scheduling: 'lifo',
  });
}

function pool(job) {
  const key = poolKey(job);
  let p = pools.get(key);
  if (!p) {
    p = newPool(job);
    pools.set(key, p);
  }
  return p;
}

async function release() {
  const p = pools.get('fresh');
  pools.delete('fresh');
  if (!p) return;
  if (undici) await p.close();
  else p.destroy();
}

async function* bodyChunks(total) {
  let left = total;
  while (left > 0) {
    const c = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
    left -= c.length;
    yield c;
  }
}

// httpDo is one http.request; it resolves with the body bytes moved.
function httpDo(job, agent, url) {
  return new Promise((resolve, reject) => {
    const headers = {};
    if (job.body_bytes > 0) headers['Content-Length'] = String(job.body_bytes);
    const req = http.request(
      { host: url.hostname, port: url.port, path: url.pathname + url.search, method: job.method, agent, headers },
      (res) => {
        let n = 0;
        res.on('data', (c) => { n += c.length; });
        res.on('end', () => {
          if (res.statusCode !== 200) reject(new Error('status ' + res.statusCode));
          else resolve(job.body_bytes > 0 ? job.body_bytes : n);
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(job.timeout_ms, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    if (job.body_bytes > 0) {
      (async () => {
        for await (const c of bodyChunks(job.body_bytes)) {
          if (!req.write(c)) await once(req, 'drain');
        }
        req.end();
      })().catch((err) => req.destroy(err));
    } else {
      req.end();
    }
  });
}

// undiciDo is one dispatcher.request; it resolves with the body bytes moved.
async function undiciDo(job, agent, url) {
  const opts = {
    origin: url.origin,
    path: url.pathname + url.search,
    method: job.method,
    headersTimeout: job.timeout_ms,
    bodyTimeout: job.timeout_ms,
    reset: !job.keep_alive, // Connection: close
  };
  if (job.body_bytes > 0) {
    opts.headers = { 'content-length': String(job.body_bytes) };
    opts.body = bodyChunks(job.body_bytes);
  }
  const { statusCode, body } = await agent.request(opts);
  let n = 0;
  for await (const c of body) n += c.length;
  if (statusCode !== 200) throw new Error('status ' + statusCode);
  return job.body_bytes > 0 ? job.body_bytes : n;
}

async function run(job) {
  const agent = pool(job);
  const url = new URL(job.url);
  const doOne = undici ? () => undiciDo(job, agent, url) : () => httpDo(job, agent, url);
  const res = { requests: 0, errors: 0, bytes: 0, elapsed_ns: 0, lat: [], err_sample: '' };
  const one = async (startNs) => {
    try {
      const n = await doOne();
      res.bytes += n;
      res.lat.push(Number((process.hrtime.bigint() - startNs) / 1000n));
    } catch (err) {
      res.errors++;
      if (!res.err_sample) res.err_sample = String(err && (err.code || err.message) || err);
    }
    res.requests++;
  };
  const t0 = process.hrtime.bigint();
  const deadline = t0 + BigInt(job.duration_ms) * 1000000n;
  if (job.mode === 'closed') {
    const worker = async () => {
      for (let done = 0; process.hrtime.bigint() < deadline || done < job.min_per_worker; done++) {
        await one(process.hrtime.bigint());
      }
    };
    await Promise.all(Array.from({ length: job.concurrency }, worker));
  } else if (job.mode === 'burst') {
    await Promise.all(Array.from({ length: job.count }, () => one(process.hrtime.bigint())));
  } else if (job.mode === 'rate') {
    // Open loop: request i is due at t0 + i/rate; latency counts from then.
    const interval = BigInt(Math.round(1e9 / job.rate));
    const inflight = new Set();
    let i = 0n;
    for (;;) {
      const now = process.hrtime.bigint();
      let due = t0 + i * interval;
      while (due <= now && due < deadline) {
        const p = one(due);
        inflight.add(p);
        p.finally(() => inflight.delete(p));
        i++;
        due = t0 + i * interval;
      }
      if (due >= deadline) break;
      const waitMs = Number((due - process.hrtime.bigint()) / 1000000n);
      await new Promise((r) => setTimeout(r, Math.max(0, waitMs)));
    }
    await Promise.all([...inflight]);
  }
  res.elapsed_ns = Number(process.hrtime.bigint() - t0);
  return res;
}

const rl = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
rl.on('line', (line) => {
  queue = queue.then(async () => {
    const cmd = JSON.parse(line);
    let out;
    if (cmd.op === 'hello') out = { ready: true, client: clientKind, node: process.versions.node };
    else if (cmd.op === 'run') out = await run(cmd.job);
    else if (cmd.op === 'release') { await release(); out = { ok: true }; }
    else out = { error: 'unknown op ' + cmd.op };
    process.stdout.write(JSON.stringify(out) + '\n');
  }).catch((err) => {
    process.stderr.write(String(err && err.stack || err) + '\n');
    process.exit(1);
  });
});
rl.on('close', () => process.exit(0));
