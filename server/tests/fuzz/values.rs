//! Hostile values: the numbers, strings, schedules, handlers, crontabs, URLs and scripts the
//! generated requests are made of. Each generator mixes valid values (so that calls get past
//! decoding and reach the engine and the storage) with values that are wrong, extreme or
//! meant to hurt.

use serde_json::{json, Map, Value};

use super::rng::Rng;

/// The largest scraper id a client may choose (2^53 - 1, docs/api.md).
pub const MAX_CHOSEN_ID: i64 = (1 << 53) - 1;

/// An integer, most often an extreme one.
pub fn integer(rng: &mut Rng) -> i64 {
    match rng.below(16) {
        0 => 0,
        1 => -1,
        2 => i64::MAX,
        3 => i64::MIN,
        4 => MAX_CHOSEN_ID,
        5 => MAX_CHOSEN_ID + 1,
        6 => i32::MAX as i64,
        7 => i32::MIN as i64,
        8 => i64::MAX - 1,
        9 => i64::MIN + 1,
        10 => -(1 << 53),
        11 => rng.next_u64() as i64,
        12 => rng.below(2_000) as i64 - 1_000,
        13 => u32::MAX as i64,
        14 => 1_000_000_000_000_000,
        _ => rng.below(10) as i64,
    }
}

/// A number of any JSON shape: an integer, one beyond 64 bits, or a float.
pub fn number(rng: &mut Rng) -> Value {
    match rng.below(12) {
        0 => json!(u64::MAX),
        1 => json!(i64::MAX as u64 + 1),
        2 => json!(0.5),
        3 => json!(-0.0),
        4 => json!(1.0),
        5 => json!(1e308),
        6 => json!(-1e308),
        7 => json!(5e-324),
        8 => json!(9.223372036854776e18),
        9 => json!(2.0),
        _ => json!(integer(rng)),
    }
}

/// A number as JSON text, including texts no JSON value holds (they make parse errors or
/// floats): what a client may type.
pub fn number_text(rng: &mut Rng) -> String {
    let texts = [
        "1e400",
        "-1e400",
        "1e-400",
        "99999999999999999999",
        "-99999999999999999999",
        "18446744073709551616",
        "-9223372036854775809",
        "9223372036854775807",
        "-9223372036854775808",
        "-0",
        "0.0",
        "1E2",
        "00",
        "01",
        "1.",
        ".5",
        "+1",
        "0x10",
        "NaN",
        "Infinity",
        "-Infinity",
        "1_000",
        "1e",
        "--1",
        "2.5e+",
    ];
    match rng.below(4) {
        0 => format!("1{}", "0".repeat(rng.between(20, 400) as usize)),
        1 => format!("0.{}1", "0".repeat(rng.between(20, 400) as usize)),
        _ => (*rng.pick(&texts)).to_owned(),
    }
}

/// Unicode that tends to break things: right-to-left overrides, zero-width and combining
/// characters, non-characters, emoji with modifiers, look-alikes.
const UNICODE: &[&str] = &[
    "\u{202e}evil\u{202c}",
    "\u{200b}\u{200d}\u{2060}",
    "e\u{301}\u{301}\u{301}\u{301}",
    "\u{fffe}\u{ffff}\u{10ffff}",
    "\u{1f980}\u{1f3fd}\u{200d}\u{1f469}",
    "\u{0430}dmin",
    "\u{feff}",
    "\u{2028}\u{2029}",
    "\u{fdd0}",
    "ß\u{130}ǅ",
    "𝕊𝕟𝕖𝕒𝕜",
    "日本語テキスト",
    "\u{85}",
];

/// NUL and the other control characters: PostgreSQL's `text` cannot hold NUL at all.
const CONTROL: &[&str] = &[
    "\0",
    "\u{1}",
    "\u{7}",
    "\u{8}",
    "\t",
    "\n",
    "\r",
    "\u{b}",
    "\u{c}",
    "\u{1b}[31m",
    "\u{7f}",
    "\u{9f}",
];

/// A string: empty, blank, control characters, unicode, exactly at or over a length limit,
/// long, or injection-looking. Huge ones ([`huge`]) are planted by the caller, rarely.
pub fn string(rng: &mut Rng) -> String {
    match rng.below(18) {
        0 => String::new(),
        1 => " \t\n".to_owned(),
        2 => (0..rng.between(1, 8))
            .map(|_| *rng.pick(CONTROL))
            .collect::<Vec<_>>()
            .join("x"),
        3 => (0..rng.between(1, 6))
            .map(|_| *rng.pick(UNICODE))
            .collect::<Vec<_>>()
            .concat(),
        4 => "n".repeat(256),
        5 => "é".repeat(257),
        6 => "\u{1f980}".repeat(rng.between(255, 258) as usize),
        7 => "x".repeat(rng.between(1_000, 70_000) as usize),
        8 => "Robert'); DROP TABLE scrapers;--".to_owned(),
        9 => "%s%n%x{}{{0}}${jndi:ldap://x}<script>alert(1)</script>".to_owned(),
        10 => "\\u0000 \\\" \\\\".to_owned(),
        11 => format!("a\0b{}", rng.pick(UNICODE)),
        _ => word(rng),
    }
}

/// 1.1 to 5 MB of text: over every length limit, and over the default body limit (2 MiB)
/// most of the time, so the server must refuse it without reading it all.
pub fn huge(rng: &mut Rng) -> String {
    let chunk: String = (0..64)
        .map(|_| match rng.below(8) {
            0 => '\u{e9}',
            1 => '\0',
            2 => '\u{1f980}',
            _ => (b'a' + rng.below(26) as u8) as char,
        })
        .collect();
    let bytes = rng.between(1_100_000, 5_000_000) as usize;
    chunk.repeat(bytes / chunk.len() + 1)
}

/// A short readable word: a valid name.
pub fn word(rng: &mut Rng) -> String {
    let words = [
        "news",
        "shop",
        "fuzz",
        "prices",
        "titles",
        "feed",
        "x",
        "Ünïcødé",
        "日本",
    ];
    format!("{} {}", rng.pick(&words), rng.below(100_000))
}

/// Any JSON value, nested at most `depth` levels (sometimes much deeper: 50-120 levels of
/// arrays or objects, under serde_json's limit of 128, so the body still parses).
pub fn any(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth == 0 { 6 } else { 10 }) {
        0 => Value::Null,
        1 => json!(rng.chance(50)),
        2 => number(rng),
        3 | 4 => json!(string(rng)),
        5 => json!(integer(rng)),
        6 => Value::Array((0..rng.below(5)).map(|_| any(rng, depth - 1)).collect()),
        7 | 8 => {
            let mut map = Map::new();
            for _ in 0..rng.below(5) {
                map.insert(key(rng), any(rng, depth - 1));
            }
            Value::Object(map)
        }
        _ => {
            let levels = rng.between(50, 120) as usize;
            nested(rng, levels)
        }
    }
}

/// An object key: mostly plain, sometimes empty, unicode or with control characters.
pub fn key(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => String::new(),
        1 => (*rng.pick(UNICODE)).to_owned(),
        2 => (*rng.pick(CONTROL)).to_owned(),
        _ => format!("k{}", rng.below(50)),
    }
}

/// `levels` nested arrays or objects around a number.
pub fn nested(rng: &mut Rng, levels: usize) -> Value {
    let mut value = json!(rng.below(10));
    let objects = rng.chance(50);
    for _ in 0..levels {
        value = if objects {
            json!({ "a": value })
        } else {
            json!([value])
        };
    }
    value
}

pub const SCHEDULES: [&str; 8] = [
    "inactive",
    "every_second",
    "every_minute",
    "every_hour",
    "every_day",
    "every_week",
    "every_month",
    "crontab",
];

/// A `schedule`: valid, or a wrong name, case or type.
pub fn schedule(rng: &mut Rng) -> Value {
    match rng.below(12) {
        0 => json!("every_year"),
        1 => json!("EVERY_SECOND"),
        2 => json!(" inactive"),
        3 => json!("inactive\0"),
        4 => json!(7),
        5 => json!({ "inactive": null }),
        6 => json!(["inactive"]),
        7 => any(rng, 1),
        _ => json!(rng.pick(&SCHEDULES)),
    }
}

/// A crontab expression: valid ones, ones that never fire (February 31st) and garbage.
pub fn crontab(rng: &mut Rng) -> Value {
    let texts = [
        "* * * * *",
        "0 6 * * 1-5",
        "*/5 * * * *",
        "@hourly",
        "@daily",
        "0 0 31 2 *",
        "0 0 30 2 *",
        "59 23 31 12 *",
        "0 0 29 2 1",
        "* * * * * *",
        "* * * *",
        "60 * * * *",
        "* 24 * * *",
        "*/0 * * * *",
        "1-1000000 * * * *",
        "-1 * * * *",
        "99999999999999999999 * * * *",
        "@reboot",
        "@every 1s",
        "L W # ? *",
        "0 0 * * 8",
        "0 0 ? * MON#9",
        "5-1 * * * *",
        "*/1 */1 */1 */1 */1",
        "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30 * * * *",
        "",
        "   ",
        "\0 * * * *",
        "* * * * *\n* * * * *",
        "１ * * * *",
    ];
    match rng.below(10) {
        0 => Value::Null,
        1 => json!("*".repeat(rng.between(250, 300) as usize)),
        2 => any(rng, 1),
        3 => json!(string(rng)),
        _ => json!(rng.pick(&texts)),
    }
}

/// A priority: 0, 1, 2, or anything else.
pub fn priority(rng: &mut Rng) -> Value {
    match rng.below(14) {
        0 => json!(3),
        1 => json!(-1),
        2 => json!("HIGH"),
        3 => json!("1"),
        4 => json!(1.0),
        5 => Value::Null,
        6 => json!(true),
        7 => json!(i64::MAX),
        8 => json!(u64::MAX),
        9 => any(rng, 1),
        _ => json!(rng.below(3)),
    }
}

/// A handler name: a registered one, or not.
pub fn handler(rng: &mut Rng) -> Value {
    match rng.below(14) {
        0 => json!("nope"),
        1 => json!(""),
        2 => json!("SCRIPT"),
        3 => json!(" script"),
        4 => json!("script\0"),
        5 => json!("h".repeat(rng.between(250, 300) as usize)),
        6 => json!(string(rng)),
        7 => any(rng, 1),
        8..=10 => json!("extract"),
        _ => json!("script"),
    }
}

/// URLs a scraper must never reach, or that are not URLs at all. `port` is the server's own.
pub fn hostile_url(rng: &mut Rng, port: u16) -> String {
    match rng.below(12) {
        0 => long_url(rng),
        _ => rng.pick(&hostile_urls(port)).clone(),
    }
}

/// An URL of 100-300 thousand characters: a host name, or a query.
pub fn long_url(rng: &mut Rng) -> String {
    if rng.chance(50) {
        format!(
            "http://{}.invalid/",
            "a".repeat(rng.between(100_000, 300_000) as usize)
        )
    } else {
        format!(
            "https://long.invalid/?q={}",
            "%41".repeat(rng.between(10_000, 100_000) as usize)
        )
    }
}

/// Every fixed hostile URL.
pub fn hostile_urls(port: u16) -> Vec<String> {
    vec![
        "file:///etc/passwd".to_owned(),
        "file://localhost/etc/shadow".to_owned(),
        "gopher://127.0.0.1:70/_GET%20/".to_owned(),
        "ftp://127.0.0.1/".to_owned(),
        "dict://127.0.0.1:11211/stats".to_owned(),
        "data:text/html,<h1>x</h1>".to_owned(),
        "javascript:alert(1)".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[fd00:ec2::254]/latest/meta-data/".to_owned(),
        "http://metadata.google.internal/computeMetadata/v1/".to_owned(),
        format!("http://127.0.0.1:{port}/api/v1/jsonrpc"),
        format!("http://localhost:{port}/healthz"),
        format!("http://[::1]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://2130706433:{port}/"),
        format!("http://0x7f.0.0.1:{port}/"),
        format!("http://127.1:{port}/"),
        format!("http://0.0.0.0:{port}/"),
        "http://127.0.0.1:5432/".to_owned(),
        "http://127.0.0.1:22/".to_owned(),
        "https://127.0.0.1:1/".to_owned(),
        "http://10.0.0.1/".to_owned(),
        "http://172.16.0.1/".to_owned(),
        "http://192.168.0.1/".to_owned(),
        "http://100.64.0.1/".to_owned(),
        "http://[fe80::1]/".to_owned(),
        "http://[fd00::1]/".to_owned(),
        "http://224.0.0.1/".to_owned(),
        "http://255.255.255.255/".to_owned(),
        "http://user:pass@127.0.0.1/".to_owned(),
        "http://example.com:99999/".to_owned(),
        "http://[::1/".to_owned(),
        "http://%00/".to_owned(),
        "http://exa\0mple.invalid/".to_owned(),
        "http:///nohost".to_owned(),
        "http://xn--zz.invalid/".to_owned(),
        "http://xn--ls8h.invalid/".to_owned(),
        "http://\u{1f4a9}.invalid/".to_owned(),
        "http://\u{1d00}\u{299}\u{1d04}.invalid/".to_owned(),
        "http://\u{202e}moc.elgoog.invalid/".to_owned(),
        "http://a..b.invalid/".to_owned(),
        format!("http://{}.invalid/", "a".repeat(64)),
        format!("http://{}invalid/", "a.".repeat(200)),
        "//127.0.0.1/".to_owned(),
        "127.0.0.1".to_owned(),
        "".to_owned(),
    ]
}

/// A script that is cheap to run (or fails at once): what scheduled scrapers may run.
pub fn cheap_script(rng: &mut Rng, port: u16) -> String {
    let scripts = [
        "1".to_owned(),
        "\"ok\"".to_owned(),
        "log(\"fuzz\"); 2".to_owned(),
        "set_state(\"s\"); state()".to_owned(),
        "set_state(())".to_owned(),
        "throw \"boom\"".to_owned(),
        "let x = ;".to_owned(),
        "params".to_owned(),
        "args".to_owned(),
        "log(\"error\", \"\\u0000 nul\"); \"\\u0000\"".to_owned(),
        format!("get(\"http://127.0.0.1:{port}/healthz\")"),
        "get(\"file:///etc/passwd\")".to_owned(),
        "`${\"x\".pad(1000, \"y\")}`".to_owned(),
        "parse_json(\"{}\")".to_owned(),
        "select(\"<p>x</p>\", \"p\").len()".to_owned(),
        "regex(\"aaa\", \"(a+)+$\")".to_owned(),
        String::new(),
        "// nothing but a comment".to_owned(),
        "\0".to_owned(),
    ];
    rng.pick(&scripts).clone()
}

/// Scripts meant to hurt: they must end as failed jobs, stopped by the job's timeout or by
/// the sandbox's limits, and never take the server down. Each comes with a label.
pub fn hostile_scripts(port: u16) -> Vec<(&'static str, String)> {
    let deep = |open: &str, middle: &str, close: &str, levels: usize| {
        format!("{}{middle}{}", open.repeat(levels), close.repeat(levels))
    };
    let rpc = |method: &str, params: &str| {
        format!(
            "post(\"http://127.0.0.1:{port}/api/v1/jsonrpc\", #{{jsonrpc: \"2.0\", id: 1, method: \"{method}\", params: {params}}})"
        )
    };
    vec![
        ("an endless loop", "let x = 0; loop { x += 1; }".to_owned()),
        ("an endless while", "while true { }".to_owned()),
        (
            "a string doubled without end",
            "let s = \"x\"; loop { s += s; }".to_owned(),
        ),
        (
            "a 2^31-element array",
            "let a = []; a.pad(2147483647, 0); a.len()".to_owned(),
        ),
        (
            "a 2^31-character string",
            "let s = \"x\"; s.pad(2147483647, \"y\"); s.len()".to_owned(),
        ),
        (
            "a string times 2^31",
            "let s = \"ab\"; s * 2147483647".to_owned(),
        ),
        (
            "endless recursion",
            "fn f(n) { f(n + 1) } f(0)".to_owned(),
        ),
        (
            "exponential recursion",
            "fn r(n) { r(n) + r(n) } r(1)".to_owned(),
        ),
        (
            "10,000 nested parentheses",
            deep("(", "1", ")", 10_000),
        ),
        ("10,000 nested arrays", deep("[", "", "]", 10_000)),
        ("10,000 nested blocks", deep("{", "", "}", 10_000)),
        (
            "10,000 unary minuses",
            format!("{}1", "-".repeat(10_000)),
        ),
        (
            "JSON nested 10,000 deep",
            format!("parse_json(\"{}\")", deep("[", "", "]", 10_000)),
        ),
        (
            "a regex too large to compile",
            "regex(\"x\", \"a{1000}{1000}{1000}\")".to_owned(),
        ),
        (
            "an invalid CSS selector",
            "select(\"<p>\", \"::(\")".to_owned(),
        ),
        (
            "integer overflow",
            "let big = 9223372036854775807; big + 1".to_owned(),
        ),
        (
            "an index of i64::MIN",
            "let a = [1]; a[-9223372036854775808]".to_owned(),
        ),
        (
            "a 1 MiB throw",
            "throw \"t\".pad(1048576, \"t\")".to_owned(),
        ),
        (
            "a state over 1 MiB",
            "let s = \"s\"; s.pad(2000000, \"s\"); set_state(s); throw \"state saved?\"".to_owned(),
        ),
        (
            "deleting a seeded scraper through the API (SSRF)",
            rpc("delete_scraper", "#{id: 1}"),
        ),
        (
            "renaming a seeded scraper through the API (SSRF)",
            rpc(
                "update_scraper",
                "#{scraper: #{id: 2, name: \"pwned\", schedule: \"inactive\", handler: \"script\"}}",
            ),
        ),
        (
            "reading the metadata service",
            "get(\"http://169.254.169.254/latest/meta-data/\")".to_owned(),
        ),
        ("reading a file", "get(\"file:///etc/passwd\")".to_owned()),
        (
            "PostgreSQL's port",
            "get(\"http://127.0.0.1:5432/\")".to_owned(),
        ),
        (
            "gopher to a local port",
            "get(\"gopher://127.0.0.1:5432/_x\")".to_owned(),
        ),
        (
            "many requests at once to the server itself",
            format!("let urls = []; for i in 0..200 {{ urls.push(\"http://127.0.0.1:{port}/healthz\"); }} get_all(urls, 16)"),
        ),
    ]
}

/// `config.plugins`: absent, valid, or settings that are wrong, extreme or hostile.
pub fn plugins(rng: &mut Rng, port: u16) -> Value {
    match rng.below(16) {
        0 => json!({"robots_txt": {"enabled": false}}),
        1 => json!({"rate_limiter": {"enabled": true, "max_requests": 0, "time_window": -1}}),
        2 => {
            json!({"rate_limiter": {"enabled": true, "max_requests": 1, "time_window": 1e308, "rate_limited_strategy": "wait"}})
        }
        3 => json!({"limits": {"timeout": 1e308}}),
        4 => json!({"limits": {"timeout": 5e-324, "max_response_bytes": u64::MAX}}),
        5 => json!({"proxy": {"proxy": format!("http://127.0.0.1:{port}")}}),
        6 => {
            json!({"proxy": {"proxy": "socks5://169.254.169.254:1080", "proxy_auth": {"login": "\0", "password": "\r\n"}}})
        }
        7 => json!({"user_agent_injecter": {"enabled": true, "browsers": ["\0\r\nX-Injected: 1"]}}),
        8 => json!({"requests_logging": "yes"}),
        9 => json!({"no_such_plugin": {}}),
        10 => json!({"limits": {"timeout": -0.0, "max_response_bytes": 0}}),
        11 => any(rng, 2),
        12 => json!([]),
        _ => Value::Null,
    }
}
