use typed_session::{CsrfSecret, SessionData};

#[derive(SessionData)]
struct Two {
    #[session(csrf)]
    csrf: CsrfSecret,
    #[session(csrf)]
    second: CsrfSecret,
}

#[derive(SessionData)]
struct MemoryOnly {
    #[session(csrf, memory_only)]
    csrf: CsrfSecret,
}

#[derive(SessionData)]
struct Encrypted {
    #[session(csrf, encrypt)]
    csrf: CsrfSecret,
}

#[derive(SessionData)]
struct Renewing {
    #[session(csrf, renew_on_change)]
    csrf: CsrfSecret,
}

#[derive(SessionData)]
struct Defaulted {
    #[session(csrf, default = "fresh")]
    csrf: CsrfSecret,
}

fn fresh() -> CsrfSecret {
    CsrfSecret::default()
}

fn main() {}
