//! Every JsonRPC method, each declared once.
//!
//! A method is a type implementing [`Method`]: its name, its params (a struct whose fields are
//! the named params, with their doc comments), its result and the [`Engine`] call. From that
//! declaration come the dispatch by name, the list of names ([`METHOD_NAMES`]) and, through
//! [`visit`], the method's entry in the OpenAPI document, whose params and result schemas are
//! derived from those types. What types cannot tell (a summary, examples, the errors a method
//! returns) is written next to the rest of the document, in `crate::openapi`'s
//! [`Documented`] impls; a method without one does not compile.
//!
//! A new method is a type, its two impls, and its place in the `registry!` list below. Params
//! types have no doc comment of their own: it would describe `params` as a whole in the
//! document, where the fields' say it all.

use std::future::Future;

use engine::error::FieldError;
use engine::model::{
    JobLogLine, Priority, Scraper, ScraperConfig, ScraperId, ScraperJob, ScraperJobId,
    ScraperJobPriority, ScraperSchedule,
};
use engine::schedule::MAX_NAME_CHARS;
use engine::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{run, RpcError};
use crate::openapi::Documented;

/// A JsonRPC method.
pub trait Method {
    /// The name clients call it by.
    const NAME: &'static str;
    /// The call's `params`, decoded by name; the fields' doc comments describe them in the
    /// OpenAPI document.
    type Params: DeserializeOwned;
    /// The reply's `result`.
    type Result: Serialize;

    /// Runs the method. What it does is the [`Engine`]'s; a method checks only what the API
    /// bounds beyond it (the length of strings a reply would echo).
    fn call(
        engine: &Engine,
        params: Self::Params,
    ) -> impl Future<Output = Result<Self::Result, RpcError>> + Send;
}

/// Something that goes through every method, as the OpenAPI document does.
pub trait Visitor {
    fn visit<M: Documented>(&mut self);
}

/// Writes, from the one list of methods, everything that goes through them all.
macro_rules! registry {
    ($($method:ty),+ $(,)?) => {
        /// The name of every method, in the order the OpenAPI document lists them.
        pub const METHOD_NAMES: &[&str] = &[$(<$method as Method>::NAME),+];

        /// Shows `visitor` every method, in the order of [`METHOD_NAMES`].
        pub fn visit(visitor: &mut impl Visitor) {
            $(visitor.visit::<$method>();)+
        }

        /// Runs the method called `name` with the call's `params`: its result as JSON text.
        pub(super) async fn dispatch(
            engine: &Engine,
            name: &str,
            params: Option<Value>,
        ) -> Result<String, RpcError> {
            $(if name == <$method as Method>::NAME {
                return run::<$method>(engine, params).await;
            })+
            Err(RpcError::method_not_found(name))
        }
    };
}

registry![
    SearchScrapers,
    GetScrapers,
    GetScraper,
    CreateScraper,
    UpdateScraper,
    DeleteScraper,
    EnqueueScraper,
    GetScraperJobs,
    GetScraperJob,
    KillScraperJob,
    GetScraperJobLogs,
    RunEphemeral,
    GetScraperHandlers,
    GetSchedules,
    GetPriorities,
    IsReadOnly,
];

/// This method takes no params: omit them, or send `{}` or `[]`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// A string param longer than `max` characters is refused like pydantic refuses one.
fn check_param_length(name: &str, value: Option<&str>, max: usize) -> Result<(), RpcError> {
    match value {
        Some(value) if value.chars().count() > max => Err(RpcError::invalid_params(vec![
            json!({ "loc": [name], "msg": format!("ensure this value has at most {max} characters"), "type": "value_error.any_str.max_length", "ctx": { "limit_value": max } }),
        ])),
        _ => Ok(()),
    }
}

/// A handler name longer than any name can be is an invalid scraper field (10005), rather
/// than an unknown handler whose name the reply would echo.
fn check_handler_length(handler: &str, loc: &[&str]) -> Result<(), RpcError> {
    if handler.chars().count() > MAX_NAME_CHARS {
        return Err(engine::Error::InvalidScraper(vec![FieldError::new(
            loc,
            format!("must be at most {MAX_NAME_CHARS} characters"),
        )])
        .into());
    }
    Ok(())
}

// Scrapers.

#[derive(Deserialize, ToSchema)]
pub struct SearchParams {
    /// Case-sensitive substring of the name; null: any name.
    name_filter: Option<String>,
    /// At most this many scrapers; null or 0 or less: no limit.
    max_items: Option<i64>,
    /// Only scrapers with an id greater than this (the last id of the previous page).
    last_id: Option<i64>,
}

/// `search_scrapers`: scrapers whose name contains a text, by id, a page at a time.
pub struct SearchScrapers;

impl Method for SearchScrapers {
    const NAME: &'static str = "search_scrapers";
    type Params = SearchParams;
    type Result = Vec<Scraper>;

    async fn call(
        engine: &Engine,
        SearchParams {
            name_filter,
            max_items,
            last_id,
        }: SearchParams,
    ) -> Result<Vec<Scraper>, RpcError> {
        check_param_length("name_filter", name_filter.as_deref(), MAX_NAME_CHARS)?;
        Ok(engine
            .search_scrapers(name_filter.as_deref(), max_items, last_id)
            .await?)
    }
}

/// `get_scrapers`: every scraper.
pub struct GetScrapers;

impl Method for GetScrapers {
    const NAME: &'static str = "get_scrapers";
    type Params = NoParams;
    type Result = Vec<Scraper>;

    async fn call(engine: &Engine, NoParams {}: NoParams) -> Result<Vec<Scraper>, RpcError> {
        Ok(engine.get_scrapers().await?)
    }
}

#[derive(Deserialize, ToSchema)]
pub struct ScraperIdParams {
    /// The scraper's id.
    #[schema(value_type = i64)]
    id: ScraperId,
}

/// `get_scraper`: one scraper.
pub struct GetScraper;

impl Method for GetScraper {
    const NAME: &'static str = "get_scraper";
    type Params = ScraperIdParams;
    type Result = Scraper;

    async fn call(
        engine: &Engine,
        ScraperIdParams { id }: ScraperIdParams,
    ) -> Result<Scraper, RpcError> {
        Ok(engine.get_scraper(id).await?)
    }
}

// `create_scraper` and `update_scraper` take the same param, but not the same scraper: each
// has its own type, so that the document says which.

#[derive(Deserialize, ToSchema)]
pub struct NewScraperParams {
    /// The new scraper.
    scraper: Scraper,
}

/// `create_scraper`: stores a new scraper (id -1 or absent: the server assigns one).
pub struct CreateScraper;

impl Method for CreateScraper {
    const NAME: &'static str = "create_scraper";
    type Params = NewScraperParams;
    type Result = Scraper;

    async fn call(
        engine: &Engine,
        NewScraperParams { scraper }: NewScraperParams,
    ) -> Result<Scraper, RpcError> {
        check_handler_length(&scraper.handler, &["scraper", "handler"])?;
        Ok(engine.create_scraper(scraper).await?)
    }
}

#[derive(Deserialize, ToSchema)]
pub struct ReplacementScraperParams {
    /// The scraper with its id and every field.
    scraper: Scraper,
}

/// `update_scraper`: replaces a stored scraper.
pub struct UpdateScraper;

impl Method for UpdateScraper {
    const NAME: &'static str = "update_scraper";
    type Params = ReplacementScraperParams;
    type Result = Scraper;

    async fn call(
        engine: &Engine,
        ReplacementScraperParams { scraper }: ReplacementScraperParams,
    ) -> Result<Scraper, RpcError> {
        check_handler_length(&scraper.handler, &["scraper", "handler"])?;
        Ok(engine.update_scraper(scraper).await?)
    }
}

/// `delete_scraper`: deletes a scraper and returns it.
pub struct DeleteScraper;

impl Method for DeleteScraper {
    const NAME: &'static str = "delete_scraper";
    type Params = ScraperIdParams;
    type Result = Scraper;

    async fn call(
        engine: &Engine,
        ScraperIdParams { id }: ScraperIdParams,
    ) -> Result<Scraper, RpcError> {
        Ok(engine.delete_scraper(id).await?)
    }
}

// Jobs.

#[derive(Deserialize, ToSchema)]
pub struct EnqueueParams {
    /// The scraper's id.
    #[schema(value_type = i64)]
    scraper_id: ScraperId,
    /// Priority of the job: 0 utmost, 1 high, 2 normal.
    priority: ScraperJobPriority,
}

/// `enqueue_scraper`: queues a run of a scraper now.
pub struct EnqueueScraper;

impl Method for EnqueueScraper {
    const NAME: &'static str = "enqueue_scraper";
    type Params = EnqueueParams;
    type Result = ScraperJob;

    async fn call(
        engine: &Engine,
        EnqueueParams {
            scraper_id,
            priority,
        }: EnqueueParams,
    ) -> Result<ScraperJob, RpcError> {
        Ok(engine.enqueue_scraper(scraper_id, priority).await?)
    }
}

#[derive(Deserialize, ToSchema)]
pub struct ScraperJobsParams {
    /// The scraper's id.
    #[schema(value_type = i64)]
    scraper_id: ScraperId,
}

/// `get_scraper_jobs`: a scraper's jobs, newest first.
pub struct GetScraperJobs;

impl Method for GetScraperJobs {
    const NAME: &'static str = "get_scraper_jobs";
    type Params = ScraperJobsParams;
    type Result = Vec<ScraperJob>;

    async fn call(
        engine: &Engine,
        ScraperJobsParams { scraper_id }: ScraperJobsParams,
    ) -> Result<Vec<ScraperJob>, RpcError> {
        Ok(engine.get_scraper_jobs(scraper_id).await?)
    }
}

#[derive(Deserialize, ToSchema)]
pub struct JobParams {
    /// The scraper's id.
    #[schema(value_type = i64)]
    scraper_id: ScraperId,
    /// The job's id.
    #[schema(value_type = i64)]
    job_id: ScraperJobId,
}

/// `get_scraper_job`: one job of a scraper.
pub struct GetScraperJob;

impl Method for GetScraperJob {
    const NAME: &'static str = "get_scraper_job";
    type Params = JobParams;
    type Result = ScraperJob;

    async fn call(
        engine: &Engine,
        JobParams { scraper_id, job_id }: JobParams,
    ) -> Result<ScraperJob, RpcError> {
        Ok(engine.get_scraper_job(scraper_id, job_id).await?)
    }
}

/// `kill_scraper_job`: kills a pending or running job.
pub struct KillScraperJob;

impl Method for KillScraperJob {
    const NAME: &'static str = "kill_scraper_job";
    type Params = JobParams;
    type Result = ScraperJob;

    async fn call(
        engine: &Engine,
        JobParams { scraper_id, job_id }: JobParams,
    ) -> Result<ScraperJob, RpcError> {
        Ok(engine.kill_scraper_job(scraper_id, job_id).await?)
    }
}

#[derive(Deserialize, ToSchema)]
pub struct JobLogsParams {
    /// The scraper's id.
    #[schema(value_type = i64)]
    scraper_id: ScraperId,
    /// The job's id.
    #[schema(value_type = i64)]
    job_id: ScraperJobId,
    /// Only lines with an id greater than this; absent or null: from the first line.
    #[serde(default)]
    after: Option<i64>,
    /// At most this many lines (absent or null: 1000; capped at 10000).
    #[serde(default)]
    max_lines: Option<usize>,
}

/// `get_scraper_job_logs`: lines of a job's log, oldest first.
pub struct GetScraperJobLogs;

impl Method for GetScraperJobLogs {
    const NAME: &'static str = "get_scraper_job_logs";
    type Params = JobLogsParams;
    type Result = Vec<JobLogLine>;

    async fn call(
        engine: &Engine,
        JobLogsParams {
            scraper_id,
            job_id,
            after,
            max_lines,
        }: JobLogsParams,
    ) -> Result<Vec<JobLogLine>, RpcError> {
        Ok(engine
            .get_scraper_job_logs(scraper_id, job_id, after, max_lines)
            .await?)
    }
}

#[derive(Deserialize, ToSchema)]
pub struct EphemeralRunParams {
    /// Name of a registered handler.
    handler: String,
    /// The handler's params and middleware settings, as in a scraper.
    #[serde(default)]
    config: ScraperConfig,
    /// The state the handler starts from; what it saves is kept for this run only.
    #[serde(default)]
    state: Option<String>,
    /// Priority of the job (default 2, normal).
    #[serde(default)]
    priority: ScraperJobPriority,
}

/// `run_ephemeral`: runs a handler once with a config, without saving a scraper.
pub struct RunEphemeral;

impl Method for RunEphemeral {
    const NAME: &'static str = "run_ephemeral";
    type Params = EphemeralRunParams;
    type Result = ScraperJob;

    async fn call(
        engine: &Engine,
        EphemeralRunParams {
            handler,
            config,
            state,
            priority,
        }: EphemeralRunParams,
    ) -> Result<ScraperJob, RpcError> {
        check_handler_length(&handler, &["handler"])?;
        Ok(engine
            .run_ephemeral(handler, config, state, priority)
            .await?)
    }
}

// Platform.

/// `get_scraper_handlers`: the names of the registered handlers.
pub struct GetScraperHandlers;

impl Method for GetScraperHandlers {
    const NAME: &'static str = "get_scraper_handlers";
    type Params = NoParams;
    type Result = Vec<String>;

    async fn call(engine: &Engine, NoParams {}: NoParams) -> Result<Vec<String>, RpcError> {
        Ok(engine.get_scraper_handlers())
    }
}

/// `get_schedules`: the schedules a scraper can have.
pub struct GetSchedules;

impl Method for GetSchedules {
    const NAME: &'static str = "get_schedules";
    type Params = NoParams;
    type Result = Vec<ScraperSchedule>;

    async fn call(
        engine: &Engine,
        NoParams {}: NoParams,
    ) -> Result<Vec<ScraperSchedule>, RpcError> {
        Ok(engine.get_schedules())
    }
}

/// `get_priorities`: the job priorities, with their names.
pub struct GetPriorities;

impl Method for GetPriorities {
    const NAME: &'static str = "get_priorities";
    type Params = NoParams;
    type Result = Vec<Priority>;

    async fn call(engine: &Engine, NoParams {}: NoParams) -> Result<Vec<Priority>, RpcError> {
        Ok(engine.get_priorities())
    }
}

/// `is_read_only`: whether the scrapers list is read-only.
pub struct IsReadOnly;

impl Method for IsReadOnly {
    const NAME: &'static str = "is_read_only";
    type Params = NoParams;
    type Result = bool;

    async fn call(engine: &Engine, NoParams {}: NoParams) -> Result<bool, RpcError> {
        Ok(engine.is_read_only())
    }
}
