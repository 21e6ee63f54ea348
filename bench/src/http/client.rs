//! A JsonRPC client on one keep-alive HTTP/1.1 connection. The load generator runs one per
//! simulated client: hyper's bare connection costs the least CPU per request, which matters
//! when the generator and the server share two cores.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use crate::BoxResult;

pub struct Client {
    sender: SendRequest<Full<Bytes>>,
}

/// A JsonRPC call's outcome: the result, or the error object.
pub type Outcome = Result<Value, Value>;

impl Client {
    pub async fn connect(address: SocketAddr) -> BoxResult<Client> {
        let stream = tokio::net::TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends when the server closes the connection or the client is dropped.
            let _ = connection.await;
        });
        Ok(Client { sender })
    }

    /// Sends a request and returns the status and the whole body.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> BoxResult<(u16, Bytes)> {
        self.sender.ready().await?;
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, "127.0.0.1")
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(body))?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// Calls a JsonRPC method.
    pub async fn call(&mut self, method: &str, params: Value) -> BoxResult<Outcome> {
        let (status, body) = self
            .send(Method::POST, "/api/v1/jsonrpc", request(method, params))
            .await?;
        if status != 200 {
            return Err(format!(
                "{method}: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            )
            .into());
        }
        let mut response: Value = serde_json::from_slice(&body)?;
        Ok(match response.get_mut("result") {
            Some(result) => Ok(result.take()),
            None => Err(response["error"].take()),
        })
    }

    /// Calls a method that must succeed.
    pub async fn ok(&mut self, method: &str, params: Value) -> BoxResult<Value> {
        self.call(method, params)
            .await?
            .map_err(|error| format!("{method}: {error}").into())
    }
}

/// A JsonRPC request body, as the original's UI sends it.
pub fn request(method: &str, params: Value) -> Bytes {
    Bytes::from(json!({"jsonrpc": "2.0", "id": 0, "method": method, "params": params}).to_string())
}
