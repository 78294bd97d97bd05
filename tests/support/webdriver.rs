//! A small W3C WebDriver client over the blocking HTTP of `http1`, driving Debian's
//! chromedriver and headless Chromium: sessions, navigation, elements, scripts, pointer
//! actions and screenshots. What a missing browser or driver needs is said in the panic.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::http1;

/// The key WebDriver uses for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn chromedriver_path() -> PathBuf {
    std::env::var_os("TEST_CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromedriver"))
}

fn chromium_path() -> PathBuf {
    std::env::var_os("TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// A chromedriver process; killed when dropped.
pub struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    pub fn start() -> Driver {
        let driver = chromedriver_path();
        let browser = chromium_path();
        assert!(
            driver.is_file() && browser.is_file(),
            "the UI tests need Chromium and its driver at {} and {} (Debian: \
             `apt-get install chromium chromium-driver`; or set TEST_CHROMIUM and TEST_CHROMEDRIVER)",
            browser.display(),
            driver.display()
        );
        let address = super::free_address();
        let port = address.rsplit(':').next().unwrap_or_default().to_owned();
        let log = std::env::temp_dir().join(format!("troupe-chromedriver-{port}.log"));
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver {
            child,
            url: format!("http://{address}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = String::new();
        while Instant::now() < deadline {
            match http1::blocking_get(&format!("{}/status", driver.url)) {
                Ok(status) if status.body.contains("\"ready\":true") => return driver,
                Ok(status) => last = format!("{}: {}", status.status, status.body),
                Err(error) => last = error.to_string(),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        panic!(
            "chromedriver did not become ready in 20 s (last answer: {last}); its log:\n{output}"
        );
    }

    /// A headless Chromium window of `width` x `height`.
    pub fn session(&self, width: u32, height: u32) -> Browser {
        self.open(json!({
            "binary": chromium_path(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     format!("--window-size={width},{height}")]
        }))
    }

    /// A phone's screen: a viewport of `width` x `height` CSS pixels at 3x (headless
    /// Chromium's windows are at least 500 px wide, so a phone is emulated).
    pub fn phone(&self, width: u32, height: u32) -> Browser {
        self.open(json!({
            "binary": chromium_path(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            "mobileEmulation": { "deviceMetrics": { "width": width, "height": height, "pixelRatio": 3.0, "touch": true } }
        }))
    }

    fn open(&self, chrome_options: Value) -> Browser {
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": chrome_options
        }}});
        let answer = call(&format!("{}/session", self.url), "POST", Some(capabilities));
        let id = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {answer}"))
            .to_owned();
        Browser {
            base: format!("{}/session/{id}", self.url),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _already_dead = self.child.kill();
        let _reaped = self.child.wait();
    }
}

/// One WebDriver command; panics with the driver's message when it fails.
fn call(url: &str, method: &str, body: Option<Value>) -> Value {
    let text = body.map(|body| body.to_string());
    let response = http1::request(
        method,
        url,
        text.as_deref().map(|t| ("application/json", t)),
    )
    .unwrap_or_else(|error| panic!("{method} {url}: {error}"));
    let value: Value = serde_json::from_str(&response.body).unwrap_or(Value::Null);
    if response.status != 200 {
        panic!(
            "{method} {url} answered {}: {}",
            response.status, value["value"]
        );
    }
    value.get("value").cloned().unwrap_or(value)
}

/// A browser session; closed when dropped.
pub struct Browser {
    base: String,
}

/// An element of the page.
#[derive(Clone, Debug)]
pub struct Element(String);

impl Browser {
    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        call(&format!("{}{path}", self.base), method, body)
    }

    pub fn go(&self, url: &str) {
        self.command("POST", "/url", Some(json!({ "url": url })));
    }

    /// Every cookie of the current page's origin, HttpOnly ones included.
    pub fn cookies(&self) -> Vec<Value> {
        self.command("GET", "/cookie", None)
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Sets cookies (as `cookies` returned them) for the current page's origin.
    pub fn add_cookies(&self, cookies: &[Value]) {
        for cookie in cookies {
            self.command("POST", "/cookie", Some(json!({ "cookie": cookie })));
        }
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub fn run(&self, script: &str, args: Vec<Value>) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Runs `script`, which calls `arguments[arguments.length - 1]` with its answer.
    pub fn run_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.command(
            "POST",
            "/execute/async",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Waits up to `seconds` for `script` to return something truthy, and returns it.
    pub fn wait_for(&self, what: &str, seconds: u64, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let value = self.run(script, vec![]);
            let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                && value != json!("")
                && value != json!(0);
            if truthy {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "waited {seconds} s for {what}; the page says:\n{}",
                self.run(
                    "return document.body ? document.body.innerText : ''",
                    vec![]
                )
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the app has hydrated the page (see troupe_frontend::hydrate).
    pub fn wait_hydrated(&self) {
        self.wait_for(
            "the page to hydrate (is the bundle built? cargo xtask ui)",
            30,
            "return document.documentElement.dataset.hydrated === 'true'",
        );
    }

    pub fn find(&self, css: &str) -> Element {
        let found = self.command(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        );
        Element(
            found[ELEMENT]
                .as_str()
                .unwrap_or_else(|| panic!("no element {css}"))
                .to_owned(),
        )
    }

    pub fn click(&self, element: &Element) {
        self.command(
            "POST",
            &format!("/element/{}/click", element.0),
            Some(json!({})),
        );
    }

    pub fn type_into(&self, element: &Element, text: &str) {
        self.command(
            "POST",
            &format!("/element/{}/value", element.0),
            Some(json!({ "text": text })),
        );
    }

    /// Presses keys (WebDriver key codes, e.g. "\u{E004}" for Tab) on the focused element.
    pub fn press(&self, keys: &str) {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|key| {
                [
                    json!({ "type": "keyDown", "value": key.to_string() }),
                    json!({ "type": "keyUp", "value": key.to_string() }),
                ]
            })
            .collect();
        self.command(
            "POST",
            "/actions",
            Some(json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": actions }] })),
        );
        self.command("DELETE", "/actions", None);
    }

    /// Presses the mouse at `from` and releases it at `to` (viewport pixels), moving
    /// through the points between as a person drags.
    pub fn drag(&self, from: (f64, f64), to: (f64, f64)) {
        let point = |(x, y): (f64, f64), duration: u64| {
            json!({ "type": "pointerMove", "duration": duration, "origin": "viewport",
                    "x": x.round() as i64, "y": y.round() as i64 })
        };
        let middle = ((from.0 + to.0) / 2.0, (from.1 + to.1) / 2.0);
        let actions = json!([{
            "type": "pointer", "id": "mouse", "parameters": { "pointerType": "mouse" },
            "actions": [
                point(from, 0),
                { "type": "pointerDown", "button": 0 },
                point(middle, 100),
                point(to, 100),
                { "type": "pointerUp", "button": 0 },
            ]
        }]);
        self.command("POST", "/actions", Some(json!({ "actions": actions })));
        self.command("DELETE", "/actions", None);
    }

    /// The centre of the first element matching `css`, in viewport pixels.
    pub fn centre(&self, css: &str) -> (f64, f64) {
        let at = self.run(
            "const el = document.querySelector(arguments[0]); if (!el) return null; \
             el.scrollIntoView({ block: 'nearest', inline: 'nearest' }); \
             const r = el.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2];",
            vec![json!(css)],
        );
        match (at[0].as_f64(), at[1].as_f64()) {
            (Some(x), Some(y)) => (x, y),
            _ => panic!("no element {css} to point at"),
        }
    }

    /// A PNG of the viewport, written to `path`.
    pub fn screenshot(&self, path: &Path) {
        let encoded = self.command("GET", "/screenshot", None);
        let bytes = base64_decode(encoded.as_str().expect("base64 text"));
        std::fs::write(path, bytes).expect("write the screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = http1::request("DELETE", &self.base, None);
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let digits: Vec<u8> = text.bytes().filter_map(value).collect();
    digits
        .chunks(4)
        .flat_map(|chunk| {
            let mut bits = 0_u32;
            for (i, digit) in chunk.iter().enumerate() {
                bits |= u32::from(*digit) << (18 - 6 * i);
            }
            let bytes = bits.to_be_bytes();
            bytes[1..chunk.len()].to_vec()
        })
        .collect()
}
