#![no_implicit_prelude]

mod sessions {
    #![no_implicit_prelude]

    fn start() -> u64 {
        1
    }

    #[derive(::typed_session::SessionData)]
    pub struct Visit {
        #[session(default = "start")]
        count: u64,
        name: ::std::option::Option<::std::string::String>,
        #[session(memory_only)]
        csrf: ::std::vec::Vec<u8>,
    }
}

fn main() {}
