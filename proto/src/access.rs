//! Who may do what on NATS: one user per platform role, each allowed exactly
//! the subjects its service uses (DESIGN.md section 9, "Platform services").
//!
//! The permissions are data built from the names in [`crate::subject`], so a
//! renamed stream or subject changes them too. [`authorization_conf`] renders
//! them as a `nats-server` `authorization` block: the test servers,
//! `olinctl dev` and the Kubernetes manifests all use that one rendering.
//!
//! JetStream is reached through its API subjects (`$JS.API.STREAM.INFO.<stream>`
//! and so on), so a permission on a subject is a permission on an operation:
//! no platform role may delete or purge a stream, only its owner may change
//! a stream's settings, and the others may create one that is missing (so
//! services start in any order) but never update it.

use crate::subject::{
    CONSUMER_CONTROL, CONSUMER_WORKERS, KV_LIMITS, KV_RESULTS, KV_ROUTES, KV_WORKERS, STREAM_DEAD, STREAM_EVENTS,
    STREAM_INVOCATIONS,
};

/// A platform role with its own NATS user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// The HTTP gateway: publishes invocations, reads routes and presence,
    /// records and reads async calls by id, hears its own replies.
    Gateway,
    /// A worker: takes invocations from the shared consumer, replies,
    /// publishes events and dead letters, heartbeats, stores async results.
    Worker,
    /// The control plane: writes routes, broadcasts prewarm/evict, ingests
    /// execution events.
    Control,
    /// The operator's own credential (`olinctl dead-letters`, the `nats`
    /// CLI): everything, including deleting streams. Never given to a pod.
    Operator,
}

impl Role {
    /// Every role, in a stable order.
    pub const ALL: [Role; 4] = [Role::Gateway, Role::Worker, Role::Control, Role::Operator];

    /// The NATS user name of the role, e.g. `olin-gateway`.
    pub fn user(self) -> &'static str {
        match self {
            Role::Gateway => "olin-gateway",
            Role::Worker => "olin-worker",
            Role::Control => "olin-control",
            Role::Operator => "olin-operator",
        }
    }

    /// The inbox prefix the role's clients use (`ConnectOptions::custom_inbox_prefix`),
    /// so that a role can hear its own inboxes and nobody else's.
    pub fn inbox_prefix(self) -> &'static str {
        match self {
            Role::Gateway => "_INBOX.gateway",
            Role::Worker => "_INBOX.worker",
            Role::Control => "_INBOX.control",
            Role::Operator => "_INBOX.operator",
        }
    }

    /// The environment variable the Kubernetes NATS servers read this role's
    /// password from (`$OLIN_GATEWAY_NATS_PASSWORD` in the rendered config).
    pub fn password_env(self) -> &'static str {
        match self {
            Role::Gateway => "OLIN_GATEWAY_NATS_PASSWORD",
            Role::Worker => "OLIN_WORKER_NATS_PASSWORD",
            Role::Control => "OLIN_CONTROL_NATS_PASSWORD",
            Role::Operator => "OLIN_OPERATOR_NATS_PASSWORD",
        }
    }

    /// What the role may publish and subscribe to.
    pub fn permissions(self) -> Permissions {
        match self {
            Role::Gateway => gateway(),
            Role::Worker => worker(),
            Role::Control => control(),
            Role::Operator => Permissions { publish: vec![">".into()], subscribe: vec![">".into()] },
        }
    }
}

/// Subjects a role may publish to and subscribe to (NATS wildcards).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Permissions {
    /// Allowed publish subjects; everything else is refused.
    pub publish: Vec<String>,
    /// Allowed subscribe subjects; everything else is refused.
    pub subscribe: Vec<String>,
}

/// What a role may do with one stream.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    /// Look it up, and create it if it is missing.
    Use,
    /// Also change its settings: the role whose flags decide them.
    Own,
}

const API: &str = "$JS.API";

fn kv_stream(bucket: &str) -> String {
    format!("KV_{bucket}")
}

fn kv_keys(bucket: &str) -> String {
    format!("$KV.{bucket}.*")
}

/// Both `X` and `X.>`: a NATS `>` needs at least one more token.
fn with_tail(p: &mut Vec<String>, subject: String) {
    p.push(format!("{subject}.>"));
    p.push(subject);
}

fn stream(p: &mut Vec<String>, name: &str, how: Use) {
    p.push(format!("{API}.STREAM.INFO.{name}"));
    p.push(format!("{API}.STREAM.CREATE.{name}"));
    if how == Use::Own {
        p.push(format!("{API}.STREAM.UPDATE.{name}"));
    }
}

/// Read a bucket in full: get any key, watch it, list its keys.
fn read_bucket(p: &mut Vec<String>, bucket: &str) {
    let s = kv_stream(bucket);
    with_tail(p, format!("{API}.DIRECT.GET.{s}"));
    p.push(format!("{API}.STREAM.MSG.GET.{s}"));
    // Watches and key listings are ordered push consumers with flow control.
    with_tail(p, format!("{API}.CONSUMER.CREATE.{s}"));
    p.push(format!("{API}.CONSUMER.DELETE.{s}.*"));
    p.push(format!("$JS.FC.{s}.>"));
}

/// Compare-and-set on any key of a bucket: read one key directly, write it
/// (`Nats-Expected-Last-Subject-Sequence` travels in the write's headers).
/// No listing, watching or reading by sequence.
fn update_bucket(p: &mut Vec<String>, bucket: &str) {
    p.push(kv_keys(bucket));
    p.push(format!("{API}.DIRECT.GET.{}.{}", kv_stream(bucket), kv_keys(bucket)));
}

/// A durable pull consumer the role uses (and may create or update).
fn durable(p: &mut Vec<String>, stream: &str, consumer: &str) {
    p.push(format!("{API}.CONSUMER.INFO.{stream}.{consumer}"));
    p.push(format!("{API}.CONSUMER.DURABLE.CREATE.{stream}.{consumer}"));
    with_tail(p, format!("{API}.CONSUMER.CREATE.{stream}.{consumer}"));
    p.push(format!("{API}.CONSUMER.MSG.NEXT.{stream}.{consumer}"));
    p.push(format!("$JS.ACK.{stream}.{consumer}.>"));
}

fn gateway() -> Permissions {
    let mut p = vec![crate::subject::invoke_subjects(), crate::subject::direct_subjects()];
    stream(&mut p, STREAM_INVOCATIONS, Use::Own);
    for bucket in [KV_ROUTES, KV_WORKERS] {
        stream(&mut p, &kv_stream(bucket), Use::Use);
        read_bucket(&mut p, bucket);
    }
    // Async calls: record one as pending, and read one back by its id (the
    // client's capability). No listing, no watch, no read by sequence.
    let results = kv_stream(KV_RESULTS);
    stream(&mut p, &results, Use::Use);
    p.push(kv_keys(KV_RESULTS));
    p.push(format!("{API}.DIRECT.GET.{results}.{}", kv_keys(KV_RESULTS)));
    // Admission: the gateway owns the limits bucket's settings.
    stream(&mut p, &kv_stream(KV_LIMITS), Use::Own);
    update_bucket(&mut p, KV_LIMITS);
    // After a reconnect: asking workers for replies lost on the way.
    p.push(crate::subject::replay_requests());
    let subscribe = vec![format!("{}.>", Role::Gateway.inbox_prefix()), crate::subject::reply_subscriptions()];
    Permissions { publish: p, subscribe }
}

fn worker() -> Permissions {
    let mut p = vec![
        crate::subject::reply_subscriptions(),
        // Answering control's prewarm requests: the module is ready.
        crate::subject::warm_replies(),
        crate::subject::event_subjects(),
        crate::subject::dead_subjects(),
        kv_keys(KV_WORKERS),
        kv_keys(KV_RESULTS),
    ];
    stream(&mut p, STREAM_INVOCATIONS, Use::Use);
    durable(&mut p, STREAM_INVOCATIONS, CONSUMER_WORKERS);
    // Queuing a synchronous call again, once, when its deliveries ran out
    // while its caller waited (`Olin-Requeued`). The worker holds every
    // call it runs and answers its callers already; queuing them is no
    // more than that.
    p.push(crate::subject::invoke_subjects());
    // Dead-lettering an exhausted call: read it by sequence, then remove it.
    p.push(format!("{API}.STREAM.MSG.GET.{STREAM_INVOCATIONS}"));
    p.push(format!("{API}.STREAM.MSG.DELETE.{STREAM_INVOCATIONS}"));
    for name in [STREAM_EVENTS, STREAM_DEAD] {
        stream(&mut p, name, Use::Own);
    }
    for bucket in [KV_WORKERS, KV_RESULTS] {
        stream(&mut p, &kv_stream(bucket), Use::Own);
    }
    // Giving back a call's concurrency lease when it has finished.
    stream(&mut p, &kv_stream(KV_LIMITS), Use::Use);
    update_bucket(&mut p, KV_LIMITS);
    let subscribe = vec![
        format!("{}.>", Role::Worker.inbox_prefix()),
        crate::subject::ctl_subjects(),
        crate::subject::replay_requests(),
        crate::subject::max_deliveries_advisory(),
        crate::subject::direct_subjects(),
    ];
    Permissions { publish: p, subscribe }
}

fn control() -> Permissions {
    let mut p = vec![kv_keys(KV_ROUTES), crate::subject::ctl_subjects()];
    stream(&mut p, &kv_stream(KV_ROUTES), Use::Own);
    read_bucket(&mut p, KV_ROUTES);
    stream(&mut p, STREAM_EVENTS, Use::Use);
    durable(&mut p, STREAM_EVENTS, CONSUMER_CONTROL);
    let subscribe = vec![format!("{}.>", Role::Control.inbox_prefix()), crate::subject::warm_replies()];
    Permissions { publish: p, subscribe }
}

/// Where a role's password comes from in a rendered server config.
#[derive(Debug, Clone, Copy)]
pub enum Password<'a> {
    /// Written into the config (a generated file readable only by its owner).
    Literal(&'a str),
    /// Read by `nats-server` from this environment variable at start.
    Env(&'a str),
}

fn quoted(list: &[String]) -> String {
    let items: Vec<String> = list.iter().map(|s| format!("{s:?}")).collect();
    items.join(", ")
}

/// A `nats-server` `authorization` block with one user per role given.
/// Anonymous connections are refused: there is no `no_auth_user`.
pub fn authorization_conf(users: &[(Role, Password<'_>)]) -> String {
    let mut out =
        String::from("# Rendered from olin_proto::access: one user per platform role.\nauthorization {\n  users = [\n");
    for (role, password) in users {
        let perms = role.permissions();
        let password = match password {
            Password::Literal(p) => format!("{p:?}"),
            Password::Env(var) => format!("${var}"),
        };
        out.push_str(&format!(
            "    {{\n      user: {:?}\n      password: {password}\n      permissions: {{\n        publish: {{ allow: [{}] }}\n        subscribe: {{ allow: [{}] }}\n      }}\n    }}\n",
            role.user(),
            quoted(&perms.publish),
            quoted(&perms.subscribe),
        ));
    }
    out.push_str("  ]\n}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(list: &[String], subject: &str) -> bool {
        list.iter().any(|pattern| matches(pattern, subject))
    }

    /// NATS subject matching: `*` is one token, `>` one or more at the end.
    fn matches(pattern: &str, subject: &str) -> bool {
        let mut p = pattern.split('.');
        let mut s = subject.split('.');
        loop {
            match (p.next(), s.next()) {
                (Some(">"), Some(_)) => return true,
                (Some("*"), Some(_)) => {}
                (Some(a), Some(b)) if a == b => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }

    #[test]
    fn no_platform_role_may_delete_or_purge_a_stream() {
        for role in [Role::Gateway, Role::Worker, Role::Control] {
            let p = role.permissions().publish;
            for stream in ["OLIN_INVOCATIONS", "KV_OLIN_ROUTES", "KV_OLIN_RESULTS", "OLIN_DEAD"] {
                assert!(!allows(&p, &format!("$JS.API.STREAM.DELETE.{stream}")), "{role:?} deletes {stream}");
                assert!(!allows(&p, &format!("$JS.API.STREAM.PURGE.{stream}")), "{role:?} purges {stream}");
            }
        }
    }

    #[test]
    fn each_role_writes_only_its_own_data() {
        let gw = Role::Gateway.permissions();
        assert!(allows(&gw.publish, "olin.invoke.hello"));
        assert!(allows(&gw.publish, "olin.direct.hello") && !allows(&gw.subscribe, "olin.direct.hello"));
        assert!(!allows(&gw.publish, "olin.reply.gw1.abc"), "a gateway answers as a worker");
        assert!(!allows(&gw.publish, "$KV.OLIN_ROUTES.hello"));
        assert!(allows(&gw.publish, "$JS.API.DIRECT.GET.KV_OLIN_RESULTS.$KV.OLIN_RESULTS.0190"));
        assert!(!allows(&gw.publish, "$JS.API.DIRECT.GET.KV_OLIN_RESULTS"), "reads results by sequence");
        assert!(!allows(&gw.publish, "$JS.API.CONSUMER.CREATE.KV_OLIN_RESULTS"), "watches results");
        assert!(!allows(&gw.subscribe, "$KV.OLIN_RESULTS.0190"));
        assert!(!allows(&gw.subscribe, "_INBOX.worker.abc"));

        let w = Role::Worker.permissions();
        assert!(!allows(&w.publish, "$KV.OLIN_ROUTES.hello"));
        assert!(!allows(&w.publish, "$JS.API.STREAM.UPDATE.KV_OLIN_ROUTES"));
        assert!(allows(&w.publish, "olin.invoke.hello"), "a worker queues an exhausted call again");
        assert!(allows(&w.publish, "olin.reply.gw1.abc"));
        assert!(allows(&w.subscribe, "olin.direct.hello") && !allows(&w.publish, "olin.direct.hello"));

        let c = Role::Control.permissions();
        assert!(allows(&c.publish, "$KV.OLIN_ROUTES.hello"));
        assert!(!allows(&c.publish, "olin.invoke.hello"));
        assert!(!allows(&c.publish, "$KV.OLIN_RESULTS.x"));
    }

    #[test]
    fn the_rendered_config_names_every_role_and_no_anonymous_user() {
        let conf =
            authorization_conf(&[(Role::Gateway, Password::Literal("p\"w")), (Role::Worker, Password::Env("W"))]);
        assert!(conf.contains("user: \"olin-gateway\""));
        assert!(conf.contains("password: \"p\\\"w\""));
        assert!(conf.contains("password: $W"));
        assert!(!conf.contains("no_auth_user"));
    }
}
