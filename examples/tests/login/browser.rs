//! The `login` example in real headless Chromium, driven through chromedriver (WebDriver): two
//! browsers are two devices of one user.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian's `chromium` and
//! `chromium-driver`, which `.ci/run` installs). Without them the test prints a notice and
//! skips; with `TYPED_SESSION_REQUIRE_SERVICES=1` (as in CI) it fails instead.

use std::error::Error;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use typed_session::serde_json::{self, json};

use super::LoginExample;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long one page may take to load, or one wait for the next page.
const STEP: Duration = Duration::from_secs(15);

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

/// chromedriver on a port of its own, in a process group of its own: dropping it kills the
/// driver and every browser it started, pass or fail.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Result<Self> {
        use std::os::unix::process::CommandExt as _;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        let driver = Self { child, port };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > STEP {
                return Err(format!("chromedriver did not listen on port {port}").into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(driver)
    }

    /// A new browser (a WebDriver session) with a fresh profile in `profile`.
    async fn browser(&self, profile: &Path) -> Result<Client> {
        let mut capabilities = Capabilities::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        capabilities.insert(
            "timeouts".to_owned(),
            json!({ "pageLoad": STEP.as_millis(), "script": STEP.as_millis(), "implicit": 0 }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await?;
        Ok(client)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and the browsers it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A folder for the browsers' profiles, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "typed-session-login-browser-{}-{}",
            std::process::id(),
            super::unique()
        ));
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether chromium and chromedriver are installed; else a notice (skip) or a panic (CI).
fn browser_installed() -> bool {
    let missing: Vec<_> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|path| !Path::new(path).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let problem = format!(
        "{} not installed (apt-get install chromium chromium-driver)",
        missing.join(" and ")
    );
    super::services::unavailable::<()>(&problem).is_some()
}

/// One browser on the example.
struct Browser {
    client: Client,
    base: String,
}

impl Browser {
    async fn open(&self, path: &str) -> Result<()> {
        self.client.goto(&format!("{}{path}", self.base)).await?;
        Ok(())
    }

    /// The page's visible text.
    async fn text(&self) -> Result<String> {
        Ok(self.client.find(Locator::Css("body")).await?.text().await?)
    }

    async fn path(&self) -> Result<String> {
        Ok(self.client.current_url().await?.path().to_owned())
    }

    /// Clicks `selector` and waits until the next page has loaded (a new document: a marker
    /// set on this one is gone), even when its URL is the same.
    async fn click(&self, selector: &str) -> Result<()> {
        self.client
            .execute("window.__before_click = true;", vec![])
            .await?;
        self.client
            .find(Locator::Css(selector))
            .await?
            .click()
            .await?;
        let started = Instant::now();
        loop {
            let loaded = self
                .client
                .execute(
                    "return window.__before_click === undefined \
                     && document.readyState === 'complete';",
                    vec![],
                )
                .await;
            // A script run while the old page unloads may fail: ask again.
            if matches!(loaded, Ok(serde_json::Value::Bool(true))) {
                return Ok(());
            }
            if started.elapsed() > STEP {
                return Err(format!("no new page after clicking {selector}").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Fills in the sign-in form on `/login` and sends it.
    async fn sign_in(&self, user: &str, password: &str, remember: bool) -> Result<()> {
        self.open("/login").await?;
        let form = Locator::Css("form[action='/login']");
        self.client.find(form).await?;
        self.client
            .find(Locator::Css("input[name=username]"))
            .await?
            .send_keys(user)
            .await?;
        self.client
            .find(Locator::Css("input[name=password]"))
            .await?
            .send_keys(password)
            .await?;
        if remember {
            self.client
                .find(Locator::Css("input[name=remember]"))
                .await?
                .click()
                .await?;
        }
        self.click("form[action='/login'] button[type=submit]")
            .await
    }

    /// The session cookie as the browser keeps it.
    async fn session_cookie(&self) -> Result<fantoccini::cookies::Cookie<'static>> {
        Ok(self.client.get_named_cookie("login").await?)
    }

    /// The status of a `fetch` POST from the page (same origin, with its cookies) with `body`
    /// as the form, or no body at all.
    async fn post_status(&self, path: &str, body: Option<&str>) -> Result<u64> {
        let script = "const [path, body, done] = arguments;
            const init = { method: 'POST' };
            if (body !== null) {
                init.headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
                init.body = body;
            }
            fetch(path, init).then(response => done(response.status), error => done(String(error)));";
        let status = self
            .client
            .execute_async(script, vec![json!(path), json!(body)])
            .await?;
        status
            .as_u64()
            .ok_or_else(|| format!("fetch failed: {status}").into())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_sign_in_list_devices_and_log_each_other_out() {
    if !browser_installed() {
        return;
    }
    let started = Instant::now();
    let example = LoginExample::start();
    let profiles = TempDir::new().unwrap();
    let driver = Driver::start().unwrap();
    let run = tokio::time::timeout(
        Duration::from_secs(180),
        scenario(&driver, &profiles.0, &example.addr),
    );
    match run.await {
        Ok(result) => result.unwrap(),
        Err(_) => panic!("the browser scenario took more than 180 s"),
    }
    println!("browser scenario: {:?}", started.elapsed());
}

async fn scenario(driver: &Driver, profiles: &Path, addr: &str) -> Result<()> {
    let base = format!("http://{addr}");
    let laptop = Browser {
        client: driver.browser(&profiles.join("laptop")).await?,
        base: base.clone(),
    };
    let phone = Browser {
        client: driver.browser(&profiles.join("phone")).await?,
        base,
    };
    let result = devices(&laptop, &phone).await;
    // Closing ends the browsers; the driver's drop kills whatever a failure left behind.
    let _ = laptop.client.close().await;
    let _ = phone.client.close().await;
    result
}

async fn devices(laptop: &Browser, phone: &Browser) -> Result<()> {
    // Signed out: a link to the form.
    laptop.open("/").await?;
    laptop.client.find(Locator::Css("a[href='/login']")).await?;

    // A wrong password: told once, on the form.
    laptop.sign_in("alice", "not-her-password", false).await?;
    assert_eq!(laptop.path().await?, "/login");
    assert!(laptop.text().await?.contains("Wrong username or password"));
    laptop.client.refresh().await?;
    assert!(!laptop.text().await?.contains("Wrong username or password"));

    // The laptop signs in with "remember me": welcomed once, and a persistent cookie.
    let before = laptop.session_cookie().await?.value().to_owned();
    laptop.sign_in("alice", "alice-password", true).await?;
    assert_eq!(laptop.path().await?, "/");
    let text = laptop.text().await?;
    assert!(text.contains("Welcome, alice"), "{text}");
    assert!(text.contains("Signed in as alice"), "{text}");
    laptop.client.refresh().await?;
    let text = laptop.text().await?;
    assert!(!text.contains("Welcome, alice"), "shown once: {text}");
    assert!(text.contains("Signed in as alice"), "{text}");
    let cookie = laptop.session_cookie().await?;
    assert_ne!(cookie.value(), before, "a new id at sign-in");
    assert_eq!(cookie.http_only(), Some(true));
    assert!(
        cookie
            .same_site()
            .is_some_and(|same_site| same_site.is_lax())
    );
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let expiry = cookie
        .expires_datetime()
        .ok_or("a remembered session has a persistent cookie")?
        .unix_timestamp();
    let days_left = (expiry - i64::try_from(now)?) / 86_400;
    assert!(days_left >= 29, "expires in {days_left} days");

    // The phone signs in without it: a browser-session cookie.
    phone.sign_in("alice", "alice-password", false).await?;
    assert!(phone.text().await?.contains("Signed in as alice"));
    let cookie = phone.session_cookie().await?;
    assert!(
        cookie.expires().is_none(),
        "a browser-session cookie: {cookie:?}"
    );

    // POSTs from the page without the right token: 403, and still signed in after.
    let cookie = laptop.session_cookie().await?.value().to_owned();
    assert_eq!(laptop.post_status("/logout", None).await?, 403);
    assert_eq!(
        laptop
            .post_status("/logout", Some("csrf_token=forged"))
            .await?,
        403
    );
    assert_eq!(
        laptop
            .post_status("/devices/logout-others", Some(""))
            .await?,
        403
    );
    laptop.client.refresh().await?;
    assert!(laptop.text().await?.contains("Signed in as alice"));
    assert_eq!(laptop.session_cookie().await?.value(), cookie);

    // The devices page: two sessions, this one marked; logging out the other.
    laptop.open("/devices").await?;
    let listed = laptop.client.find_all(Locator::Css("li.device")).await?;
    assert_eq!(listed.len(), 2);
    let mut marked = 0;
    for device in &listed {
        if device.text().await?.contains("this device") {
            marked += 1;
        }
    }
    assert_eq!(marked, 1, "one of them is this device");
    laptop
        .click("form[action='/devices/logout-others'] button")
        .await?;
    assert_eq!(laptop.path().await?, "/devices");
    let listed = laptop.client.find_all(Locator::Css("li.device")).await?;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].text().await?.contains("this device"));

    // The phone is signed out at its next request; the laptop is not.
    phone.client.refresh().await?;
    let text = phone.text().await?;
    assert!(!text.contains("Signed in as"), "{text}");
    phone.client.find(Locator::Css("a[href='/login']")).await?;
    laptop.open("/").await?;
    assert!(laptop.text().await?.contains("Signed in as alice"));

    // Signing out with the page's own form.
    laptop.click("form[action='/logout'] button").await?;
    assert_eq!(laptop.path().await?, "/");
    assert!(!laptop.text().await?.contains("Signed in as"));
    Ok(())
}
