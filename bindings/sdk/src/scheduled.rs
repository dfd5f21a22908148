//! The `scheduled` handler: cron triggers (`[triggers] crons` in `edge.toml`).

/// What fired, as Workers' `ScheduledController`.
#[derive(Clone, Debug)]
pub struct ScheduledController {
    /// The cron expression that fired (empty when fired by hand without one).
    pub cron: String,
    /// When it was due, in milliseconds since the Unix epoch.
    pub scheduled_time: u64,
}

/// An app's `scheduled` handler; export it with [`export_scheduled!`](crate::export_scheduled).
pub trait Scheduled {
    /// Runs once per trigger; an error is logged as the handler's failure.
    fn scheduled(controller: ScheduledController) -> Result<(), String>;
}

/// Exports `$t`'s [`Scheduled`] implementation as the component's
/// `edge:runtime/scheduled-handler`.
#[macro_export]
macro_rules! export_scheduled {
    ($t:ty) => {
        const _: () = {
            use $crate::__private::scheduled_world::exports::edge::runtime::scheduled_handler as __h;
            struct __EdgeScheduled;
            impl __h::Guest for __EdgeScheduled {
                fn scheduled(c: __h::Controller) -> ::core::result::Result<(), ::std::string::String> {
                    <$t as $crate::Scheduled>::scheduled($crate::ScheduledController {
                        cron: c.cron,
                        scheduled_time: c.scheduled_time,
                    })
                }
            }
            $crate::__private::scheduled_world::__export_edge_scheduled!(__EdgeScheduled with_types_in $crate::__private::scheduled_world);
        };
    };
}
