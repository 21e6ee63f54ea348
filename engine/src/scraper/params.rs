//! Reading a handler's `config.params` into a typed struct, with errors that name the field
//! (`invalid params.fields.title.css: …`), so a user can fix the scraper from the message.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// A wrong parameter, named by its path inside `config.params`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid params.{field}: {message}")]
pub struct ParamsError {
    /// Dotted path of the wrong parameter inside `config.params` (`fields.title.css`); empty when
    /// the params as a whole are wrong.
    pub field: String,
    /// Why it is wrong, for the person fixing the scraper ("must list at least one URL").
    pub message: String,
}

impl ParamsError {
    /// An error on the parameter at the dotted path `field`, with the reason `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ParamsError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// `params` as a `T` (typically a `#[serde(deny_unknown_fields)]` struct).
pub fn parse_params<T: DeserializeOwned>(params: &Map<String, Value>) -> Result<T, ParamsError> {
    parse_params_at("", Value::Object(params.clone()))
}

/// `value`, found at `path` inside the params (`fields.title`), as a `T`.
pub fn parse_params_at<T: DeserializeOwned>(path: &str, value: Value) -> Result<T, ParamsError> {
    serde_path_to_error::deserialize(value).map_err(|failure| {
        let message = failure.inner().to_string();
        let mut field: Vec<String> = path
            .split('.')
            .filter(|part| !part.is_empty())
            .map(str::to_owned)
            .collect();
        field.extend(
            failure
                .path()
                .to_string()
                .split('.')
                .filter(|part| !part.is_empty())
                .map(str::to_owned),
        );
        // serde reports a missing field at the struct that lacks it; name the field itself.
        if let Some(missing) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'))
        {
            field.push(missing.to_owned());
        }
        ParamsError {
            field: field.join("."),
            message,
        }
    })
}
