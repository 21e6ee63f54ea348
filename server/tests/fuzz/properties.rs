//! Property tests of the JSON-RPC params decoders: for every method, generated param
//! objects either decode (a result or one of the method's documented errors) or get -32602
//! with a non-empty `data.errors` list, exactly as the params model predicts; never both
//! ways, never anything else.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::calls::{self, Gen, Pool};
use super::model::{predict, Prediction, METHODS};
use super::rng::Rng;
use super::shared::Shared;

/// Calls per method, and per batch (a batch is one request: well under the 100-call limit).
const CALLS_PER_METHOD: usize = 160;
const BATCH: usize = 40;

/// Runs the property checks; failures go to `shared`. Returns the calls sent.
pub async fn run(shared: &Shared, stream: u64) -> usize {
    let mut rng = Rng::new(shared.seed, stream);
    let mut pool = Pool::new(stream);
    let mut sent = 0;
    for (method, _) in METHODS {
        let mut seen: BTreeMap<Prediction, usize> = BTreeMap::new();
        for chunk in 0..CALLS_PER_METHOD / BATCH {
            let mut g = Gen {
                rng: &mut rng,
                pool: &mut pool,
                seeded: &shared.seeded_ids,
                port: shared.port,
                counter: (chunk * BATCH) as u64,
            };
            let mut batch = Vec::with_capacity(BATCH);
            for n in 0..BATCH {
                let params = calls::params(&mut g, method);
                *seen.entry(predict(method, params.as_ref())).or_default() += 1;
                let mut call = json!({"jsonrpc": "2.0", "id": n, "method": method});
                if let Some(params) = params {
                    call["params"] = params;
                }
                batch.push(call);
            }
            let mut body = Value::Array(batch);
            calls::secure(&mut body, &mut g);
            sent += BATCH;
            shared
                .exchange(&mut pool, body.to_string().into_bytes())
                .await;
        }
        // A property is only as good as its inputs: each method must have been sent params
        // that decode and params that do not (methods without params: `{}` and others).
        let decodes = seen.get(&Prediction::Decodes).copied().unwrap_or(0);
        let invalid = seen.get(&Prediction::Invalid).copied().unwrap_or(0);
        if decodes < CALLS_PER_METHOD / 10 || invalid < CALLS_PER_METHOD / 10 {
            shared.fail(
                format!("the property generator covers {method} badly"),
                b"",
                &format!(
                    "{decodes} calls that decode, {invalid} that do not, of {CALLS_PER_METHOD}"
                ),
            );
        }
    }
    sent
}
