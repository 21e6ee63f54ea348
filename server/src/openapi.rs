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
//! The model types' schemas are derived in `engine::model` (feature `openapi`). Swagger UI's
//! assets are compiled into the binary (`utoipa-swagger-ui`'s `vendored` feature).

use axum::response::Redirect;
use axum::routing::get;
use axum::Router;
use engine::error::FieldError;
use engine::model::{
    timestamp, JobLogLine, LogLevel, Priority, Scraper, ScraperConfig, ScraperJob,
    ScraperJobPriority, ScraperJobStatus, ScraperSchedule,
};
use engine::Error;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{
    ArrayBuilder, ComponentsBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref, RefOr, Required,
    ResponseBuilder, Tag,
};
use utoipa::{PartialSchema, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

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
    let mut components = Components::default();
    let methods = methods(&mut components);
    let paths = methods.iter().fold(PathsBuilder::new(), |paths, method| {
        paths.path(
            format!("{METHOD_PATH_PREFIX}{}", method.name),
            PathItem::new(HttpMethod::Post, method.operation()),
        )
    });
    let tags = [
        (
            "scrapers",
            "Scrapers: what runs, with which config, on which schedule.",
        ),
        (
            "jobs",
            "Jobs: the runs of scrapers, their logs, and runs without a saved scraper.",
        ),
        (
            "platform",
            "What the server offers: handlers, schedules, priorities, read-only mode.",
        ),
    ]
    .map(|(name, description)| {
        let mut tag = Tag::new(name);
        tag.description = Some(description.to_owned());
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
            components
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
struct Components {
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

    fn list_of<T: ToSchema>(&mut self) -> RefOr<Schema> {
        ArrayBuilder::new().items(self.reference::<T>()).into()
    }
}

/// One named param of a method.
struct Param {
    name: &'static str,
    required: bool,
    description: &'static str,
    schema: RefOr<Schema>,
}

fn required(name: &'static str, description: &'static str, schema: RefOr<Schema>) -> Param {
    Param {
        name,
        required: true,
        description,
        schema,
    }
}

fn optional(name: &'static str, description: &'static str, schema: RefOr<Schema>) -> Param {
    Param {
        name,
        required: false,
        description,
        schema,
    }
}

/// One JsonRPC method as the document describes it.
struct Method {
    name: &'static str,
    tag: &'static str,
    summary: &'static str,
    params: Vec<Param>,
    /// Params of the request example: what Swagger UI's "Try it out" sends.
    example: Value,
    result: RefOr<Schema>,
    /// A result, shown as the first example of the reply.
    result_example: Value,
    /// The engine errors the method can return, besides the JSON-RPC ones every method can.
    errors: Vec<Error>,
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

impl Method {
    fn operation(&self) -> utoipa::openapi::path::Operation {
        OperationBuilder::new()
            .operation_id(Some(self.name))
            .tag(self.tag)
            .summary(Some(self.summary))
            .description(Some(self.errors_table()))
            .request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(self.request_schema()))
                            .example(Some(json!({"jsonrpc": "2.0", "id": 0, "method": self.name, "params": self.example})))
                            .build(),
                    )
                    .build(),
            ))
            .response(
                "200",
                ResponseBuilder::new()
                    .description("The reply: `result` on success, `error` otherwise (see the codes above).")
                    .content("application/json", ContentBuilder::new().schema(Some(self.reply_schema())).examples_from_iter(self.examples()).build())
                    .build(),
            )
            .build()
    }

    /// `{"jsonrpc": "2.0", "id": …, "method": "<name>", "params": {…}}`.
    fn request_schema(&self) -> Schema {
        let params = self.params.iter().fold(
            ObjectBuilder::new().schema_type(Type::Object),
            |object, param| {
                let object = object.property(
                    param.name,
                    with_description(param.schema.clone(), param.description),
                );
                if param.required {
                    object.required(param.name)
                } else {
                    object
                }
            },
        );
        let params = if self.params.is_empty() {
            params.description(Some(
                "This method takes no params: omit them, or send `{}` or `[]`.",
            ))
        } else {
            params
        };
        let mut envelope = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("jsonrpc", constant("2.0"))
            .required("jsonrpc")
            .property("id", id_schema())
            .property("method", constant(self.name))
            .required("method")
            .property("params", params);
        if self.params.iter().any(|param| param.required) {
            envelope = envelope.required("params");
        }
        envelope.into()
    }

    /// Either `{"jsonrpc", "result", "id"}` or `{"jsonrpc", "error", "id"}`.
    fn reply_schema(&self) -> Schema {
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
            .chain(self.errors.iter().map(Error::code))
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
            .item(reply("result", self.result.clone()))
            .item(reply("error", error.into()))
            .into()
    }

    /// The operation's description: a Markdown table of the error codes the method can return.
    fn errors_table(&self) -> String {
        let mut table =
            String::from("Error codes:\n\n| code | message | when |\n| --- | --- | --- |\n");
        for error in &self.errors {
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
    fn examples(&self) -> Vec<(String, utoipa::openapi::example::Example)> {
        let success = ExampleBuilder::new().summary("result").value(Some(
            json!({"jsonrpc": "2.0", "result": self.result_example, "id": 0}),
        ));
        let errors = self.errors.iter().map(|error| {
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

/// `schema` with a description; a reference gets it on the reference itself.
fn with_description(mut schema: RefOr<Schema>, description: &str) -> RefOr<Schema> {
    match &mut schema {
        RefOr::Ref(reference) => reference.description = description.to_owned(),
        RefOr::T(Schema::Object(object)) => object.description = Some(description.to_owned()),
        RefOr::T(_) => {}
    }
    schema
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

/// An example scraper: the built-in `extract` handler reading a page's title every hour.
fn example_scraper(id: i64) -> Value {
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
        "timeout_seconds": 60
    })
}

/// Example results, written by the model types themselves so that they have the wire shape.
struct Samples {
    scraper: Value,
    pending_job: Value,
    killed_job: Value,
    log_line: Value,
}

impl Samples {
    fn new() -> Samples {
        let at = |text| timestamp::parse(text).expect("a valid timestamp");
        let scraper: Scraper =
            serde_json::from_value(example_scraper(1)).expect("the example scraper is a scraper");
        let pending = ScraperJob {
            id: 1,
            scraper,
            status: ScraperJobStatus::Pending,
            priority: ScraperJobPriority::High,
            created_at: at("2026-11-29T00:48:18.229944"),
            started_at: None,
            last_active_at: None,
            finished_at: None,
            result: None,
        };
        let killed = ScraperJob {
            status: ScraperJobStatus::Killed,
            started_at: Some(at("2026-11-29T00:48:18.527432")),
            last_active_at: Some(at("2026-11-29T00:48:23.528595")),
            finished_at: Some(at("2026-11-29T00:48:25.529531")),
            ..pending.clone()
        };
        let line = JobLogLine {
            id: 1,
            at: at("2026-11-29T00:48:18.601245"),
            level: LogLevel::Info,
            message: "GET https://example.com/ - 200".to_owned(),
        };
        Samples {
            scraper: sample(&pending.scraper),
            pending_job: sample(&pending),
            killed_job: sample(killed),
            log_line: sample(line),
        }
    }
}

fn sample(value: impl Serialize) -> Value {
    serde_json::to_value(value).expect("the model types serialise to JSON")
}

/// Every JsonRPC method, in the order of `engine::Engine`'s operations.
fn methods(components: &mut Components) -> Vec<Method> {
    let scraper_id = || <i64 as PartialSchema>::schema();
    let job_id = || <i64 as PartialSchema>::schema();
    let nullable_integer = || <Option<i64> as PartialSchema>::schema();
    let scraper = components.reference::<Scraper>();
    let scrapers = components.list_of::<Scraper>();
    let job = components.reference::<ScraperJob>();
    let priority = components.reference::<ScraperJobPriority>();
    let samples = Samples::new();
    let scraper_validation = || {
        vec![
            Error::ReadOnly,
            Error::UnknownHandler("no_such_handler".into()),
            Error::InvalidScraper(vec![FieldError::new(
                &["scraper", "schedule_crontab"],
                "required when the schedule is crontab",
            )]),
        ]
    };
    vec![
        Method {
            name: "search_scrapers",
            tag: "scrapers",
            summary: "Scrapers whose name contains a text, by id, a page at a time",
            params: vec![
                optional("name_filter", "Case-sensitive substring of the name; null: any name.", <Option<String> as PartialSchema>::schema()),
                optional("max_items", "At most this many scrapers; null or 0 or less: no limit.", nullable_integer()),
                optional("last_id", "Only scrapers with an id greater than this (the last id of the previous page).", nullable_integer()),
            ],
            example: json!({"name_filter": "Example", "max_items": 10, "last_id": 0}),
            result: scrapers.clone(),
            result_example: json!([samples.scraper]),
            errors: vec![],
        },
        Method { name: "get_scrapers", tag: "scrapers", summary: "Every scraper", params: vec![], example: json!({}), result: scrapers, result_example: json!([samples.scraper]), errors: vec![] },
        Method {
            name: "get_scraper",
            tag: "scrapers",
            summary: "One scraper",
            params: vec![required("id", "The scraper's id.", scraper_id())],
            example: json!({"id": 1}),
            result: scraper.clone(),
            result_example: samples.scraper.clone(),
            errors: vec![Error::ScraperNotFound(1)],
        },
        Method {
            name: "create_scraper",
            tag: "scrapers",
            summary: "Creates a scraper (id -1 or absent: the server assigns one)",
            params: vec![required("scraper", "The new scraper.", scraper.clone())],
            example: json!({"scraper": example_scraper(-1)}),
            result: scraper.clone(),
            result_example: samples.scraper.clone(),
            errors: scraper_validation(),
        },
        Method {
            name: "update_scraper",
            tag: "scrapers",
            summary: "Replaces a scraper (omitted optional fields are reset); the scheduler applies the change at once",
            params: vec![required("scraper", "The scraper with its id and every field.", scraper.clone())],
            example: json!({"scraper": example_scraper(1)}),
            result: scraper.clone(),
            result_example: samples.scraper.clone(),
            errors: [Error::ScraperNotFound(1)].into_iter().chain(scraper_validation()).collect(),
        },
        Method {
            name: "delete_scraper",
            tag: "scrapers",
            summary: "Deletes a scraper and returns it; its jobs stay readable, a pending one is killed",
            params: vec![required("id", "The scraper's id.", scraper_id())],
            example: json!({"id": 1}),
            result: scraper,
            result_example: samples.scraper.clone(),
            errors: vec![Error::ScraperNotFound(1), Error::ReadOnly],
        },
        Method {
            name: "enqueue_scraper",
            tag: "jobs",
            summary: "Queues a run of a scraper now and returns the pending job",
            params: vec![required("scraper_id", "The scraper's id.", scraper_id()), required("priority", "Priority of the job: 0 utmost, 1 high, 2 normal.", priority.clone())],
            example: json!({"scraper_id": 1, "priority": 1}),
            result: job.clone(),
            result_example: samples.pending_job.clone(),
            errors: vec![Error::ScraperNotFound(1), Error::ScraperHasActiveRun],
        },
        Method {
            name: "get_scraper_jobs",
            tag: "jobs",
            summary: "A scraper's jobs, newest first (empty for an unknown scraper)",
            params: vec![required("scraper_id", "The scraper's id.", scraper_id())],
            example: json!({"scraper_id": 1}),
            result: components.list_of::<ScraperJob>(),
            result_example: json!([samples.killed_job]),
            errors: vec![],
        },
        Method {
            name: "get_scraper_job",
            tag: "jobs",
            summary: "One job of a scraper",
            params: vec![required("scraper_id", "The scraper's id.", scraper_id()), required("job_id", "The job's id.", job_id())],
            example: json!({"scraper_id": 1, "job_id": 1}),
            result: job.clone(),
            result_example: samples.pending_job.clone(),
            errors: vec![Error::ScraperJobNotFound(1)],
        },
        Method {
            name: "kill_scraper_job",
            tag: "jobs",
            summary: "Kills a pending or running job (a running handler is cancelled) and returns it",
            params: vec![required("scraper_id", "The scraper's id.", scraper_id()), required("job_id", "The job's id.", job_id())],
            example: json!({"scraper_id": 1, "job_id": 1}),
            result: job.clone(),
            result_example: samples.killed_job.clone(),
            errors: vec![Error::ScraperJobNotFound(1), Error::JobNotActive(1)],
        },
        Method {
            name: "get_scraper_job_logs",
            tag: "jobs",
            summary: "Lines of a job's log, oldest first; poll with `after` set to the last line id you have",
            params: vec![
                required("scraper_id", "The scraper's id.", scraper_id()),
                required("job_id", "The job's id.", job_id()),
                optional("after", "Only lines with an id greater than this; absent or null: from the first line.", nullable_integer()),
                optional(
                    "max_lines",
                    "At most this many lines (absent or null: 1000; capped at 10000).",
                    ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::Integer, Type::Null])).minimum(Some(0)).into(),
                ),
            ],
            example: json!({"scraper_id": 1, "job_id": 1, "after": 0, "max_lines": 100}),
            result: components.list_of::<JobLogLine>(),
            result_example: json!([samples.log_line]),
            errors: vec![Error::ScraperJobNotFound(1)],
        },
        Method {
            name: "run_ephemeral",
            tag: "jobs",
            summary: "Runs a handler once with a config, without saving a scraper; returns the job to poll with `get_scraper_job` (using `job.scraper.id`)",
            params: vec![
                required("handler", "Name of a registered handler.", <String as PartialSchema>::schema()),
                optional("config", "The handler's params and middleware settings, as in a scraper.", components.reference::<ScraperConfig>()),
                optional("state", "The state the handler starts from; what it saves is kept for this run only.", <Option<String> as PartialSchema>::schema()),
                optional("priority", "Priority of the job (default 2, normal).", priority),
            ],
            example: json!({"handler": "extract", "config": example_scraper(-1)["config"], "state": null, "priority": 0}),
            result: job,
            result_example: samples.pending_job.clone(),
            errors: vec![
                Error::ReadOnly,
                Error::UnknownHandler("no_such_handler".into()),
                Error::TooManyEphemeralRuns(engine::MAX_ACTIVE_EPHEMERAL_RUNS),
            ],
        },
        Method {
            name: "get_scraper_handlers",
            tag: "platform",
            summary: "Names of the registered handlers, in registration order",
            params: vec![],
            example: json!({}),
            result: <Vec<String> as PartialSchema>::schema(),
            result_example: json!(["extract", "script"]),
            errors: vec![],
        },
        Method { name: "get_schedules", tag: "platform", summary: "The schedules a scraper can have", params: vec![], example: json!({}), result: components.list_of::<ScraperSchedule>(), result_example: sample(ScraperSchedule::ALL), errors: vec![] },
        Method { name: "get_priorities", tag: "platform", summary: "The job priorities, with their names", params: vec![], example: json!({}), result: components.list_of::<Priority>(), result_example: sample(ScraperJobPriority::ALL.map(Priority::from)), errors: vec![] },
        Method {
            name: "is_read_only",
            tag: "platform",
            summary: "Whether the scrapers list is read-only (create, update and delete are refused)",
            params: vec![],
            example: json!({}),
            result: <bool as PartialSchema>::schema(),
            result_example: json!(false),
            errors: vec![],
        },
    ]
}
