//! The little HTTP the platform stand-ins of the tests speak: one request per connection,
//! read whole; one answer, then the connection closes (or, for a stream, stays open as long
//! as the caller holds it).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Request {
    pub method: String,
    /// The path with its query.
    pub path: String,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// A header's value ("" when absent); names are matched without case.
    pub fn header(&self, name: &str) -> String {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// The path without its query.
    pub fn route(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }

    /// Every value of query parameter `key`.
    pub fn query(&self, key: &str) -> Vec<String> {
        url::Url::parse(&format!("http://x{}", self.path))
            .map(|u| {
                u.query_pairs()
                    .filter(|(k, _)| k == key)
                    .map(|(_, v)| v.into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub async fn read_request(tcp: &mut TcpStream) -> Request {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && tcp.read(&mut byte).await.unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let (method, path) = (
        first.next().unwrap_or("").to_string(),
        first.next().unwrap_or("").to_string(),
    );
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut request = Request {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    let length: usize = request.header("content-length").parse().unwrap_or(0);
    request.body = vec![0u8; length];
    let _ = tcp.read_exact(&mut request.body).await;
    request
}

/// Writes an answer with `status` (`"200 OK"`), extra header lines and a body of known length.
pub async fn respond(tcp: &mut TcpStream, status: &str, headers: &[(&str, &str)], body: &str) {
    respond_bytes(tcp, status, headers, body.as_bytes()).await;
}

/// [`respond`] with a body that need not be UTF-8 (a document in another encoding).
pub async fn respond_bytes(
    tcp: &mut TcpStream,
    status: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) {
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let mut answer = format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(body);
    let _ = tcp.write_all(&answer).await;
}

/// Writes the head of an answer whose body follows until the connection closes.
pub async fn respond_streaming(tcp: &mut TcpStream, content_type: &str) {
    let _ = tcp
        .write_all(
            format!("HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await;
}

/// A listener on a free loopback port, its address, and a log for the requests it sees.
pub async fn listen() -> (
    tokio::net::TcpListener,
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = listener.local_addr().expect("its address");
    (listener, address, Default::default())
}

/// A receiver of deliveries (webhooks, chat messages) on a free loopback port, served by
/// actix on the test's runtime: every request, with its body, goes to `answer`, which keeps
/// what the test needs in its own state. Its address, and a handle to stop it.
pub fn receiver<F, Fut>(answer: F) -> (std::net::SocketAddr, actix_web::dev::ServerHandle)
where
    F: Fn(actix_web::HttpRequest, String) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = actix_web::HttpResponse> + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    let server = actix_web::HttpServer::new(move || {
        let answer = answer.clone();
        actix_web::App::new().default_service(actix_web::web::to(answer))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("the receiver listens")
    .run();
    let handle = server.handle();
    actix_rt::spawn(server);
    (addr, handle)
}

/// A stand-in on a free loopback port: each request, read whole, goes with its connection to
/// `answer`, one at a time in the order they arrive. Its address.
pub async fn serve<F, Fut>(mut answer: F) -> std::net::SocketAddr
where
    F: FnMut(Request, TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let (listener, address, _) = listen().await;
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let req = read_request(&mut tcp).await;
            answer(req, tcp).await;
        }
    });
    address
}

/// Headers as [`respond`] takes them.
pub fn pairs<'a>(headers: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    headers.iter().map(|(k, v)| (*k, v.as_str())).collect()
}
