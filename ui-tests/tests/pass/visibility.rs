mod model {
    use typed_session::SessionData;

    #[derive(SessionData)]
    pub struct Public {
        pub count: u64,
    }

    #[derive(SessionData)]
    pub(crate) struct CrateWide {
        count: u64,
    }

    #[derive(SessionData)]
    struct Private {
        count: u64,
    }

    fn private_count(session: &typed_session::TypedSession<Private>) -> u64 {
        session.count()
    }

    pub fn uses_private() {
        let _ = private_count;
    }
}

fn counts(
    public: &typed_session::TypedSession<model::Public>,
    crate_wide: &typed_session::TypedSession<model::CrateWide>,
) -> u64 {
    let _: &model::PublicSession = public;
    public.count() + crate_wide.count()
}

fn main() {
    let _ = counts;
    model::uses_private();
}
