// graphile-worker on the PostgreSQL at $DATABASE_URL (a fresh database), for scripts/bench.sh.
// Prints one JSON line.
//
//   node graphile.mjs burn-down JOBS   -> {"jobs_per_second", "commits_per_job"}
//   node graphile.mjs pickup SAMPLES   -> {"p50_ms", "p99_ms"}
//
// Both run the batched configuration of graphile-worker's own perfTest (local queue of 500,
// batched completions, 24 concurrent jobs): its fastest published setup.
import { run, runMigrations } from "graphile-worker";
import pg from "pg";

const connectionString = process.env.DATABASE_URL;
const [mode, countText] = process.argv.slice(2);
const count = Number(countText);
const CONCURRENCY = 24;
const WARM_UP = 20;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

const options = (taskList) => ({
  connectionString,
  concurrency: CONCURRENCY,
  maxPoolSize: CONCURRENCY + 1,
  noHandleSignals: true,
  pollInterval: 2000,
  taskList,
  logger: quietLogger(),
  preset: {
    worker: {
      localQueue: { size: 500, refetchDelay: { durationMs: 10 } },
      completeJobBatchDelay: 0,
      failJobBatchDelay: 0,
    },
  },
});

// Only warnings and errors: per-job info lines would cost more than the jobs.
function quietLogger() {
  return {
    scope: () => quietLogger(),
    error: (...args) => console.error(...args),
    warn: (...args) => console.error(...args),
    info: () => {},
    debug: () => {},
  };
}

// Transactions committed in this database; backends report when idle, at most once a second.
async function commits(pool) {
  await sleep(1500);
  const { rows } = await pool.query("select xact_commit::bigint as n from pg_stat_database where datname = current_database()");
  return Number(rows[0].n);
}

async function burnDown(pool) {
  await pool.query(
    "select graphile_worker.add_job('noop', json_build_object('i', i)) from generate_series(1, $1::int) i",
    [count],
  );
  let done = 0;
  let drained;
  const allDone = new Promise((resolve) => (drained = resolve));
  const before = await commits(pool);
  const started = nowMs();
  const runner = await run(
    options({
      noop: async () => {
        done += 1;
        if (done === count) drained();
      },
    }),
  );
  await allDone;
  // Completions are batched: the burn-down ends when the queue table is empty.
  for (;;) {
    const { rows } = await pool.query("select count(*)::int as n from graphile_worker._private_jobs");
    if (rows[0].n === 0) break;
    await sleep(5);
  }
  const seconds = (nowMs() - started) / 1000;
  await runner.stop();
  const after = await commits(pool);
  return { jobs_per_second: count / seconds, commits_per_job: (after - before - 1) / count };
}

async function pickup(pool) {
  let started;
  const runner = await run(options({ probe: async () => started() }));
  await sleep(1000);
  const latencies = [];
  for (let i = 0; i < WARM_UP + count; i++) {
    const start = new Promise((resolve) => (started = () => resolve(nowMs())));
    const enqueued = nowMs();
    await pool.query("select graphile_worker.add_job('probe', json_build_object('i', $1::int))", [i]);
    const at = await start;
    if (i >= WARM_UP) latencies.push(at - enqueued);
    // Idle again before the next sample.
    await sleep(5);
  }
  await runner.stop();
  latencies.sort((a, b) => a - b);
  const quantile = (q) => latencies[Math.round((latencies.length - 1) * q)];
  return { p50_ms: quantile(0.5), p99_ms: quantile(0.99) };
}

const pool = new pg.Pool({ connectionString, max: 2 });
await runMigrations({ connectionString, logger: quietLogger() });
const result = mode === "burn-down" ? await burnDown(pool) : await pickup(pool);
await pool.end();
console.log(JSON.stringify(result));
