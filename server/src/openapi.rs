//! The OpenAPI document of the JsonRPC API (`GET /openapi.json`) and Swagger UI over it
//! (`GET /api`).
//!
//! JsonRPC has a single URL, which OpenAPI cannot describe method by method. As Sneakpeek
//! v0.1.7 did, the document gives every method its own path, `POST /api/v1/jsonrpc/<method>`
//! (the server answers there with the same envelope), with the request envelope and that
//! method's named params, the result, and the error codes the method can return. HTTP status
//! is 200 for every JsonRPC outcome, so the errors are part of the 200 response: the error
//! object's `code` lists them, and the operation's description and examples name them.
//!
//! The document goes through the methods as `crate::jsonrpc::methods` declares them: the
//! schemas of a method's params and result are derived from the types it declares (their
//! `utoipa::ToSchema`, with their doc comments; the model types' are in `engine::model`, feature
//! `openapi`). This module adds what types cannot tell, in each method's [`Documented`] impl:
//! its tag, summary, examples and errors. Swagger UI's assets are compiled into the binary
//! (`utoipa-swagger-ui`'s `vendored` feature).

use axum::response::Redirect;
use axum::routing::get;
use axum::Router;
use engine::error::FieldError;
use engine::model::{
    JobLogLine, Priority, Scraper, ScraperJob, ScraperJobPriority, ScraperSchedule,
};
use engine::Error;
use serde_json::{json, Value};
use utoipa::openapi::example::{Example, ExampleBuilder};
use utoipa::openapi::path::{HttpMethod, Operation, OperationBuilder, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{
    ArrayBuilder, ComponentsBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref, RefOr, Required,
    ResponseBuilder, Tag,
};
use utoipa::ToSchema;
use utoipa_swagger_ui::SwaggerUi;

use crate::jsonrpc::methods::{
    self, CreateScraper, DeleteScraper, EnqueueScraper, GetPriorities, GetSchedules, GetScraper,
    GetScraperHandlers, GetScraperJob, GetScraperJobLogs, GetScraperJobs, GetScrapers, IsReadOnly,
    KillScraperJob, Method, RunEphemeral, SearchScrapers, UpdateScraper,
};

/// Where the document is served; Swagger UI loads it from there.
pub const DOCUMENT_PATH: &str = "/openapi.json";
/// Where Swagger UI and its assets are. `/api` leads there: the UI under a prefix of its own
/// keeps its catch-all route away from the rest of `/api/`.
pub const SWAGGER_UI_PATH: &str = "/api/swagger/";
/// The path of one method: the JsonRPC endpoint followed by the method's name.
pub const METHOD_PATH_PREFIX: &str = "/api/v1/jsonrpc/";

/// `GET /openapi.json`, and Swagger UI at `GET /api` (a redirect to [`SWAGGER_UI_PATH`]).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::from(SwaggerUi::new(SWAGGER_UI_PATH).url(DOCUMENT_PATH, document()))
        .route("/api", get(|| async { Redirect::to(SWAGGER_UI_PATH) }))
}

/// The OpenAPI document: one path per JsonRPC method.
pub fn document() -> OpenApi {
    let mut operations = Operations::default();
    methods::visit(&mut operations);
    let paths = operations
        .paths
        .into_iter()
        .fold(PathsBuilder::new(), |paths, (path, operation)| {
            paths.path(path, PathItem::new(HttpMethod::Post, operation))
        });
    let tags = MethodTag::ALL.map(|method_tag| {
        let mut tag = Tag::new(method_tag.name());
        tag.description = Some(method_tag.description().to_owned());
        tag
    });
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Sneakpeek JsonRPC API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(DESCRIPTION)),
        )
        .paths(paths)
        .components(Some(
            operations
                .components
                .schemas
                .into_iter()
                .fold(ComponentsBuilder::new(), |built, (name, schema)| built.schema(name, schema))
                .security_scheme(
                    "token",
                    SecurityScheme::Http(
                        HttpBuilder::new()
                            .scheme(HttpAuthScheme::Bearer)
                            .description(Some("The server's API token (`--api-token`). Needed only when the server has one."))
                            .build(),
                    ),
                )
                .build(),
        ))
        // Either no credentials (a server without a token) or the token.
        .security(Some([SecurityRequirement::default(), SecurityRequirement::new("token", Vec::<String>::new())]))
        .tags(Some(tags))
        .build()
}

const DESCRIPTION: &str = "JSON-RPC 2.0 with named params, compatible with Sneakpeek v0.1.7 clients. \
Send calls to `POST /api/v1/jsonrpc`; each method is also served at `POST /api/v1/jsonrpc/<method>`, \
which is how this document lists them. Every JsonRPC outcome, error or not, has HTTP status 200: \
an error is the `error` member of the reply, with the `code` listed for each method. A batch (an \
array of calls) gets an array of replies; a call without `id` is a notification and gets no reply. \
Timestamps are UTC without a zone suffix, with microseconds (`2026-11-29T00:49:26.235961`); \
priorities are integers (0 utmost, 1 high, 2 normal). The user documentation is at [/docs/](/docs/).";

/// The schemas the methods refer to, collected while their operations are described.
#[derive(Default)]
pub struct Components {
    schemas: Vec<(String, RefOr<Schema>)>,
}

impl Components {
    /// A reference to `T`'s schema, registering it and the schemas it refers to (a schema
    /// registered twice ends up once in the document: the components are a map by name).
    fn reference<T: ToSchema>(&mut self) -> RefOr<Schema> {
        self.schemas.push((T::name().into_owned(), T::schema()));
        T::schemas(&mut self.schemas);
        Ref::from_schema_name(T::name()).into()
    }

    /// `T`'s schema written out where it is used, registering the schemas it refers to.
    fn inline<T: ToSchema>(&mut self) -> RefOr<Schema> {
        T::schemas(&mut self.schemas);
        T::schema()
    }
}

/// How a result appears in the document: a model type as a reference to its schema among the
/// components, a list as an array, a plain value written out.
pub trait ResultSchema {
    fn schema(components: &mut Components) -> RefOr<Schema>;
}

// Every type a method returns is listed here, by how it appears; a method returning another
// does not compile until it is.
macro_rules! result_schema {
    ($how:ident: $($type:ty),+) => {$(
        impl ResultSchema for $type {
            fn schema(components: &mut Components) -> RefOr<Schema> {
                components.$how::<$type>()
            }
        }
    )+};
}

result_schema!(reference: Scraper, ScraperJob, JobLogLine, ScraperSchedule, Priority);
result_schema!(inline: bool, String);

impl<T: ResultSchema> ResultSchema for Vec<T> {
    fn schema(components: &mut Components) -> RefOr<Schema> {
        ArrayBuilder::new().items(T::schema(components)).into()
    }
}

/// The groups of methods in the document.
#[derive(Clone, Copy)]
pub enum MethodTag {
    Scrapers,
    Jobs,
    Platform,
}

impl MethodTag {
    const ALL: [MethodTag; 3] = [Self::Scrapers, Self::Jobs, Self::Platform];

    fn name(self) -> &'static str {
        match self {
            Self::Scrapers => "scrapers",
            Self::Jobs => "jobs",
            Self::Platform => "platform",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Self::Scrapers => "Scrapers: what runs, with which config, on which schedule.",
            Self::Jobs => {
                "Jobs: the runs of scrapers, their logs, and runs without a saved scraper."
            }
            Self::Platform => {
                "What the server offers: handlers, schedules, priorities, read-only mode."
            }
        }
    }
}

/// What the document says of a method beyond what its types tell. Every method has it: the
/// list of methods takes only documented ones.
pub trait Documented: Method<Params: ToSchema, Result: ResultSchema> {
    const TAG: MethodTag;
    const SUMMARY: &'static str;
    /// Params of the request example: what Swagger UI's "Try it out" sends.
    fn example() -> Value;
    /// A result, shown as the first example of the reply.
    fn result_example() -> Self::Result;
    /// The engine errors the method can return, besides the JSON-RPC ones every method can.
    fn errors() -> Vec<Error> {
        Vec::new()
    }
}

/// The operation of every method, by path, and the schemas they refer to.
#[derive(Default)]
struct Operations {
    paths: Vec<(String, Operation)>,
    components: Components,
}

impl methods::Visitor for Operations {
    fn visit<M: Documented>(&mut self) {
        let operation = operation::<M>(&mut self.components);
        self.paths
            .push((format!("{METHOD_PATH_PREFIX}{}", M::NAME), operation));
    }
}

/// The errors of the JSON-RPC 2.0 specification, which any call can get.
const PROTOCOL_ERRORS: [(i64, &str, &str); 7] = [
    (-32700, "Parse error", "the body is not JSON (the reply's `id` is null)"),
    (-32600, "Invalid Request", "not a JSON-RPC 2.0 call: `jsonrpc` is not \"2.0\", `method` is not a string (or longer than 64 characters), `id` is neither a number, a string nor null (or a string longer than 256 characters), or a batch holds more than 100 calls"),
    (-32601, "Method not found", "no method of this name"),
    (-32602, "Invalid params", "a param is missing or of the wrong type; `data.errors` lists each with its path (`loc`), e.g. `[\"scraper\", \"name\"]`"),
    (-32603, "Internal error", "the server failed; the detail is in the server's log"),
    (-32001, "Storage unavailable", "the database cannot be reached right now (it is restarting, say); retry later"),
    (-32002, "Batch reply too large", "in a batch, the replies before this call reached 16 MiB (`data.limit`), so it was not run; send it again"),
];

/// The operation at a method's own path.
fn operation<M: Documented>(components: &mut Components) -> Operation {
    let errors = M::errors();
    let result_example =
        serde_json::to_value(M::result_example()).expect("results serialise to JSON");
    OperationBuilder::new()
        .operation_id(Some(M::NAME))
        .tag(M::TAG.name())
        .summary(Some(M::SUMMARY))
        .description(Some(errors_table(&errors)))
        .request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(request_schema::<M>(components)))
                        .example(Some(json!({"jsonrpc": "2.0", "id": 0, "method": M::NAME, "params": M::example()})))
                        .build(),
                )
                .build(),
        ))
        .response(
            "200",
            ResponseBuilder::new()
                .description("The reply: `result` on success, `error` otherwise (see the codes above).")
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(reply_schema(M::Result::schema(components), &errors)))
                        .examples_from_iter(reply_examples(result_example, &errors))
                        .build(),
                )
                .build(),
        )
        .build()
}

/// `{"jsonrpc": "2.0", "id": …, "method": "<name>", "params": {…}}`, the params as `M`
/// declares them.
fn request_schema<M: Documented>(components: &mut Components) -> Schema {
    let params = components.inline::<M::Params>();
    let requires_params =
        matches!(&params, RefOr::T(Schema::Object(object)) if !object.required.is_empty());
    let envelope = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("jsonrpc", constant("2.0"))
        .required("jsonrpc")
        .property("id", id_schema())
        .property("method", constant(M::NAME))
        .required("method")
        .property("params", params);
    if requires_params {
        envelope.required("params").into()
    } else {
        envelope.into()
    }
}

/// Either `{"jsonrpc", "result", "id"}` or `{"jsonrpc", "error", "id"}`.
fn reply_schema(result: RefOr<Schema>, errors: &[Error]) -> Schema {
    let reply = |member: &str, schema: RefOr<Schema>| {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("jsonrpc", constant("2.0"))
            .required("jsonrpc")
            .property(member, schema)
            .required(member)
            .property("id", id_schema())
            .required("id")
    };
    let codes: Vec<i64> = PROTOCOL_ERRORS
        .iter()
        .map(|(code, ..)| *code)
        .chain(errors.iter().map(Error::code))
        .collect();
    let error = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property(
            "code",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .enum_values(Some(codes)),
        )
        .required("code")
        .property("message", ObjectBuilder::new().schema_type(Type::String))
        .required("message")
        .property(
            "data",
            ObjectBuilder::new()
                .schema_type(SchemaType::AnyValue)
                .description(Some("Details: the id not found, the invalid fields...")),
        );
    OneOfBuilder::new()
        .item(reply("result", result))
        .item(reply("error", error.into()))
        .into()
}

/// The operation's description: a Markdown table of the error codes the method can return.
fn errors_table(errors: &[Error]) -> String {
    let mut table =
        String::from("Error codes:\n\n| code | message | when |\n| --- | --- | --- |\n");
    for error in errors {
        table.push_str(&format!(
            "| {} | {} | {} |\n",
            error.code(),
            error,
            when(error)
        ));
    }
    for (code, message, when) in PROTOCOL_ERRORS {
        table.push_str(&format!("| {code} | {message} | {when} |\n"));
    }
    table
}

/// A successful reply, then one per error of the method, as the server writes them.
fn reply_examples(result: Value, errors: &[Error]) -> Vec<(String, Example)> {
    let success = ExampleBuilder::new()
        .summary("result")
        .value(Some(json!({"jsonrpc": "2.0", "result": result, "id": 0})));
    let errors = errors.iter().map(|error| {
        let mut object = json!({"code": error.code(), "message": error.to_string()});
        if let Some(data) = error.data() {
            object["data"] = data;
        }
        let example = ExampleBuilder::new()
            .summary(format!("{} {}", error.code(), error))
            .value(Some(json!({"jsonrpc": "2.0", "error": object, "id": 0})));
        (error.code().to_string(), example.build())
    });
    std::iter::once(("result".to_owned(), success.build()))
        .chain(errors)
        .collect()
}

/// When an engine error happens, for the operation descriptions.
fn when(error: &Error) -> &'static str {
    match error {
        Error::ScraperNotFound(_) => "no scraper has this id (`data` is the id)",
        Error::ScraperJobNotFound(_) => "the scraper has no job with this id (`data` is the job id)",
        Error::ReadOnly => "the server is in read-only mode: the scrapers list cannot change",
        Error::ScraperHasActiveRun => "the scraper already has a pending or running job",
        Error::UnknownHandler(_) => "no handler of this name is registered (`data.handler`)",
        Error::InvalidScraper(_) => "the scraper's settings are invalid; `data.errors` lists each field (`loc`) and why (`msg`)",
        Error::JobNotActive(_) => "the job has already finished (`data` is the job id)",
        Error::TooManyEphemeralRuns(_) => "as many ephemeral runs as allowed are pending or running (`data.limit`); wait for one to finish",
        Error::Internal(_) | Error::Unavailable(_) => "any method (see the protocol errors)",
        Error::PingNotStarted | Error::PingFinished | Error::JobTimedOut => "between workers and the queue only; the API does not return it",
    }
}

/// A string that can only be `value`.
fn constant(value: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([value]))
}

/// The call's id, echoed in the reply (null in the reply to an unparsable request).
fn id_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([
            Type::Integer,
            Type::String,
            Type::Null,
        ]))
        .description(Some(
            "Echoed in the reply. A call without `id` is a notification: it gets no reply.",
        ))
        .examples([0])
}

/// Examples of the model types, as the document's examples show them.
mod sample {
    use engine::model::{
        timestamp, JobLogLine, LogLevel, Scraper, ScraperJob, ScraperJobPriority, ScraperJobStatus,
    };
    use serde_json::{json, Value};

    const VALID: &str = "the example timestamps are valid";

    /// A scraper as a client sends it: the built-in `extract` handler reading a page's title
    /// every hour.
    pub fn scraper_json(id: i64) -> Value {
        json!({
            "id": id,
            "name": "Example titles",
            "schedule": "every_hour",
            "schedule_crontab": null,
            "handler": "extract",
            "config": {
                "params": {"url": "https://example.com/", "fields": {"title": {"css": "h1"}}},
                "plugins": {"rate_limiter": {"max_requests": 10, "time_window": 60}}
            },
            "schedule_priority": 2,
            "state": null,
            "timeout_seconds": 60,
            "retry": {
                "max_attempts": 3, "backoff": "exponential", "delay_seconds": 60,
                "max_delay_seconds": 3600, "jitter_percent": 10, "retry_on": ["dead", "http_status"]
            }
        })
    }

    pub fn scraper() -> Scraper {
        serde_json::from_value(scraper_json(1)).expect("the example scraper is a scraper")
    }

    pub fn pending_job() -> ScraperJob {
        ScraperJob {
            id: 1,
            scraper: scraper(),
            status: ScraperJobStatus::Pending,
            priority: ScraperJobPriority::High,
            created_at: timestamp::parse("2026-11-29T00:48:18.229944").expect(VALID),
            started_at: None,
            last_active_at: None,
            finished_at: None,
            result: None,
            attempt: 1,
            next_attempt_at: None,
            attempts: Vec::new(),
        }
    }

    pub fn killed_job() -> ScraperJob {
        let at = |text| timestamp::parse(text).expect(VALID);
        ScraperJob {
            status: ScraperJobStatus::Killed,
            started_at: Some(at("2026-11-29T00:48:18.527432")),
            last_active_at: Some(at("2026-11-29T00:48:23.528595")),
            finished_at: Some(at("2026-11-29T00:48:25.529531")),
            ..pending_job()
        }
    }

    pub fn log_line() -> JobLogLine {
        JobLogLine {
            id: 1,
            at: timestamp::parse("2026-11-29T00:48:18.601245").expect(VALID),
            level: LogLevel::Info,
            message: "GET https://example.com/ - 200".to_owned(),
        }
    }
}

/// The errors `create_scraper` and `update_scraper` share: a read-only server, an unknown
/// handler, invalid settings.
fn scraper_validation_errors() -> Vec<Error> {
    vec![
        Error::ReadOnly,
        Error::UnknownHandler("no_such_handler".into()),
        Error::InvalidScraper(vec![FieldError::new(
            &["scraper", "schedule_crontab"],
            "required when the schedule is crontab",
        )]),
    ]
}

// What each method's types cannot tell, in the order the document lists the methods.

impl Documented for SearchScrapers {
    const TAG: MethodTag = MethodTag::Scrapers;
    const SUMMARY: &'static str = "Scrapers whose name contains a text, by id, a page at a time";
    fn example() -> Value {
        json!({"name_filter": "Example", "max_items": 10, "last_id": 0})
    }
    fn result_example() -> Vec<Scraper> {
        vec![sample::scraper()]
    }
}

impl Documented for GetScrapers {
    const TAG: MethodTag = MethodTag::Scrapers;
    const SUMMARY: &'static str = "Every scraper";
    fn example() -> Value {
        json!({})
    }
    fn result_example() -> Vec<Scraper> {
        vec![sample::scraper()]
    }
}

impl Documented for GetScraper {
    const TAG: MethodTag = MethodTag::Scrapers;
    const SUMMARY: &'static str = "One scraper";
    fn example() -> Value {
        json!({"id": 1})
    }
    fn result_example() -> Scraper {
        sample::scraper()
    }
    fn errors() -> Vec<Error> {
        vec![Error::ScraperNotFound(1)]
    }
}

impl Documented for CreateScraper {
    const TAG: MethodTag = MethodTag::Scrapers;
    const SUMMARY: &'static str = "Creates a scraper (id -1 or absent: the server assigns one)";
    fn example() -> Value {
        json!({"scraper": sample::scraper_json(-1)})
    }
    fn result_example() -> Scraper {
        sample::scraper()
    }
    fn errors() -> Vec<Error> {
        scraper_validation_errors()
    }
}

impl Documented for UpdateScraper {
    const TAG: MethodTag = MethodTag::Scrapers;
    const SUMMARY: &'static str = "Replaces a scraper (omitted optional fields are reset); the scheduler applies the change at once";
    fn example() -> Value {
        json!({"scraper": sample::scraper_json(1)})
    }
    fn result_example() -> Scraper {
        sample::scraper()
    }
    fn errors() -> Vec<Error> {
        [Error::ScraperNotFound(1)]
            .into_iter()
            .chain(scraper_validation_errors())
            .collect()
    }
}

impl Documented for DeleteScraper {
    const TAG: MethodTag = MethodTag::Scrapers;
    const SUMMARY: &'static str =
        "Deletes a scraper and returns it; its jobs stay readable, a pending one is killed";
    fn example() -> Value {
        json!({"id": 1})
    }
    fn result_example() -> Scraper {
        sample::scraper()
    }
    fn errors() -> Vec<Error> {
        vec![Error::ScraperNotFound(1), Error::ReadOnly]
    }
}

impl Documented for EnqueueScraper {
    const TAG: MethodTag = MethodTag::Jobs;
    const SUMMARY: &'static str = "Queues a run of a scraper now and returns the pending job";
    fn example() -> Value {
        json!({"scraper_id": 1, "priority": 1})
    }
    fn result_example() -> ScraperJob {
        sample::pending_job()
    }
    fn errors() -> Vec<Error> {
        vec![Error::ScraperNotFound(1), Error::ScraperHasActiveRun]
    }
}

impl Documented for GetScraperJobs {
    const TAG: MethodTag = MethodTag::Jobs;
    const SUMMARY: &'static str = "A scraper's jobs, newest first (empty for an unknown scraper)";
    fn example() -> Value {
        json!({"scraper_id": 1})
    }
    fn result_example() -> Vec<ScraperJob> {
        vec![sample::killed_job()]
    }
}

impl Documented for GetScraperJob {
    const TAG: MethodTag = MethodTag::Jobs;
    const SUMMARY: &'static str = "One job of a scraper";
    fn example() -> Value {
        json!({"scraper_id": 1, "job_id": 1})
    }
    fn result_example() -> ScraperJob {
        sample::pending_job()
    }
    fn errors() -> Vec<Error> {
        vec![Error::ScraperJobNotFound(1)]
    }
}

impl Documented for KillScraperJob {
    const TAG: MethodTag = MethodTag::Jobs;
    const SUMMARY: &'static str =
        "Kills a pending or running job (a running handler is cancelled) and returns it";
    fn example() -> Value {
        json!({"scraper_id": 1, "job_id": 1})
    }
    fn result_example() -> ScraperJob {
        sample::killed_job()
    }
    fn errors() -> Vec<Error> {
        vec![Error::ScraperJobNotFound(1), Error::JobNotActive(1)]
    }
}

impl Documented for GetScraperJobLogs {
    const TAG: MethodTag = MethodTag::Jobs;
    const SUMMARY: &'static str =
        "Lines of a job's log, oldest first; poll with `after` set to the last line id you have";
    fn example() -> Value {
        json!({"scraper_id": 1, "job_id": 1, "after": 0, "max_lines": 100})
    }
    fn result_example() -> Vec<JobLogLine> {
        vec![sample::log_line()]
    }
    fn errors() -> Vec<Error> {
        vec![Error::ScraperJobNotFound(1)]
    }
}

impl Documented for RunEphemeral {
    const TAG: MethodTag = MethodTag::Jobs;
    const SUMMARY: &'static str = "Runs a handler once with a config, without saving a scraper; returns the job to poll with `get_scraper_job` (using `job.scraper.id`)";
    fn example() -> Value {
        json!({"handler": "extract", "config": sample::scraper_json(-1)["config"], "state": null, "priority": 0})
    }
    fn result_example() -> ScraperJob {
        sample::pending_job()
    }
    fn errors() -> Vec<Error> {
        vec![
            Error::ReadOnly,
            Error::UnknownHandler("no_such_handler".into()),
            Error::TooManyEphemeralRuns(engine::MAX_ACTIVE_EPHEMERAL_RUNS),
        ]
    }
}

impl Documented for GetScraperHandlers {
    const TAG: MethodTag = MethodTag::Platform;
    const SUMMARY: &'static str = "Names of the registered handlers, in registration order";
    fn example() -> Value {
        json!({})
    }
    fn result_example() -> Vec<String> {
        vec!["extract".to_owned(), "script".to_owned()]
    }
}

impl Documented for GetSchedules {
    const TAG: MethodTag = MethodTag::Platform;
    const SUMMARY: &'static str = "The schedules a scraper can have";
    fn example() -> Value {
        json!({})
    }
    fn result_example() -> Vec<ScraperSchedule> {
        ScraperSchedule::ALL.to_vec()
    }
}

impl Documented for GetPriorities {
    const TAG: MethodTag = MethodTag::Platform;
    const SUMMARY: &'static str = "The job priorities, with their names";
    fn example() -> Value {
        json!({})
    }
    fn result_example() -> Vec<Priority> {
        ScraperJobPriority::ALL.map(Priority::from).to_vec()
    }
}

impl Documented for IsReadOnly {
    const TAG: MethodTag = MethodTag::Platform;
    const SUMMARY: &'static str =
        "Whether the scrapers list is read-only (create, update and delete are refused)";
    fn example() -> Value {
        json!({})
    }
    fn result_example() -> bool {
        false
    }
}
