//! The face of the sandbox: one call of one module, from an
//! `InvocationRequest` to an `InvocationResponse` with usage.
//!
//! Per call: a fresh `Store`, fresh host state, only the host functions the
//! module imports, an instance, `_start` under fuel, memory and wall-clock
//! limits, then the CGI parse of stdout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use olin_proto::v1::{HostCall, InvocationRequest, InvocationResponse, Outcome, Usage};
use wasmer::{Extern, FunctionEnv, Instance, Store, TypedFunction};
use wasmer_middlewares::metering::{MeteringPoints, get_remaining_points, set_remaining_points};

use crate::egress::Egress;
use crate::engine::{Link, MemoryCapGuard, Module, Runtime};
use crate::fd::Resources;
use crate::limits::{Limits, PAGE};
use crate::process::{Budget, Halted, Process, Stop, Tail, UrlLog};
use crate::validate::START_EXPORT;
use crate::watchdog::{Deadline, Flag};
use crate::{abi, cgi, wasi};

/// What a call needs besides the module and request.
#[derive(Clone)]
pub struct RunContext<'a> {
    /// Reported to the guest as `WORKER_ID` and in the response.
    pub worker_id: &'a str,
    /// Server defaults for limits the request leaves at zero.
    pub defaults: &'a Limits,
    /// Server maxima.
    pub maxima: &'a Limits,
    /// Outbound HTTP for `http(s)` resources; `None` refuses them all.
    pub egress: Option<Arc<dyn Egress>>,
}

/// How the guest run ended, before CGI parsing.
enum Ended {
    Exit(i32),
    OutputTooLarge(usize),
    Fuel,
    Timeout,
    Memory(String),
    HostBudget(String),
    Trap(String),
}

impl Runtime {
    /// Runs `module` for `req`. Never panics and never fails: every guest
    /// fault becomes an outcome in the response.
    pub fn run(&self, module: &Module, req: &InvocationRequest, ctx: &RunContext<'_>) -> InvocationResponse {
        let started = Instant::now();
        let limits = Limits::resolve(req.limits.as_ref(), ctx.defaults, ctx.maxima);
        let mut store = Store::new(module.engine.clone());
        let process = Process {
            memory: None,
            stdin: req.body.clone(),
            stdin_pos: 0,
            stdout: Vec::new(),
            stdout_cap: usize::try_from(limits.max_output_bytes).unwrap_or(usize::MAX),
            stderr: Tail::new(usize::try_from(limits.stderr_tail_bytes).unwrap_or(0)),
            env: cgi::environment(req, ctx.worker_id),
            args: vec![req.function.clone()],
            calls: Vec::new(),
            resources: Resources::new(limits.max_open_resources as usize),
            resource_urls: UrlLog::default(),
            budget: Budget::new(usize::try_from(limits.host_budget_bytes).unwrap_or(usize::MAX)),
            started,
            deadline: started + limits.wall,
            egress: ctx.egress.clone(),
            egress_allow: req.egress_allow.clone(),
            stop: None,
        };
        let env = FunctionEnv::new(&mut store, process);
        let imports = link(&mut store, &env, module);

        let (ended, instance) = match imports {
            Err(e) => (Some(Ended::Trap(format!("instantiation failed: {e}"))), None),
            Ok(imports) => {
                let cap = MemoryCapGuard::set(limits.memory_pages());
                match Instance::new_by_index(&mut store, &module.inner, &imports) {
                    Ok(instance) => (None, Some(instance)),
                    Err(e) if cap.refused() => (Some(Ended::Memory(e.to_string())), None),
                    Err(e) => (Some(Ended::Trap(format!("instantiation failed: {e}"))), None),
                }
            }
        };
        let mut fuel_used = 0;
        // Armed once no guest code can have run: instantiation runs none (a
        // start section is called below, like `_start`).
        let mut deadline = None;
        let ended = match (ended, &instance) {
            (Some(ended), _) => ended,
            (None, None) => Ended::Trap("instantiation failed".into()),
            (None, Some(instance)) => {
                // A module has at most one memory (multi-memory is refused),
                // under whatever name it exports it.
                let memory = instance.exports.iter().memories().next().map(|(_, m)| m.clone());
                env.as_mut(&mut store).memory = memory;
                if module.metered {
                    set_remaining_points(&mut store, instance, limits.fuel);
                }
                let flag = Flag::of(&mut store, instance);
                let armed = deadline.insert(Deadline::arm(flag, started + limits.wall));
                let ended = match module.start {
                    true => match call(&mut store, &env, instance, START_EXPORT, armed) {
                        None => call(&mut store, &env, instance, "_start", armed),
                        stopped => stopped,
                    },
                    false => call(&mut store, &env, instance, "_start", armed),
                }
                .unwrap_or(Ended::Exit(0));
                if module.metered {
                    fuel_used = match get_remaining_points(&mut store, instance) {
                        MeteringPoints::Remaining(left) => limits.fuel.saturating_sub(left),
                        MeteringPoints::Exhausted => limits.fuel,
                    };
                }
                match ended {
                    Ended::Trap(_) if fuel_used >= limits.fuel => Ended::Fuel,
                    other => other,
                }
            }
        };
        drop(deadline);

        let peak_memory = env.as_ref(&store).memory.as_ref().map_or(0, |m| m.view(&store).data_size());
        let ended = match ended {
            // A guest that failed with its memory at the cap most likely failed to grow it.
            Ended::Trap(msg) | Ended::Memory(msg) if peak_memory + PAGE > limits.memory_bytes => Ended::Memory(msg),
            Ended::Exit(code) if code != 0 && peak_memory + PAGE > limits.memory_bytes => {
                Ended::Memory(format!("exit code {code}"))
            }
            other => other,
        };
        let process = std::mem::take(env.as_mut(&mut store));
        respond(req, ctx.worker_id, ended, process, fuel_used, peak_memory, started.elapsed())
    }
}

/// Builds the imports the module asks for, in its import order (so no
/// name lookups at instantiation), one host function per distinct name (a
/// function imported twice, or under both `env` and `cwa`, is built once).
fn link(store: &mut Store, env: &FunctionEnv<Process>, module: &Module) -> Result<Vec<Extern>, String> {
    let mut externs: Vec<Extern> = Vec::with_capacity(module.imports.len());
    for (i, import) in module.imports.iter().enumerate() {
        let earlier = module.imports[..i].iter().position(|o| o.link == import.link && o.name == import.name);
        let func = match earlier.and_then(|at| externs.get(at)) {
            Some(Extern::Function(f)) => f.clone(),
            _ => match import.link {
                Link::Olin => abi::function(store, env, &import.name),
                Link::Wasi => wasi::function(store, env, &import.name),
            }
            .ok_or_else(|| format!("no host function {}::{}", import.module, import.name))?,
        };
        externs.push(Extern::Function(func));
    }
    Ok(externs)
}

/// Calls the export `name: () -> ()`; `None` if it returned normally.
fn call(
    store: &mut Store,
    env: &FunctionEnv<Process>,
    instance: &Instance,
    name: &str,
    deadline: &Deadline,
) -> Option<Ended> {
    let func: TypedFunction<(), ()> = match instance.exports.get_typed_function(store, name) {
        Ok(f) => f,
        Err(e) => return Some(Ended::Trap(format!("no {name}: {e}"))),
    };
    let err = func.call(store).err()?;
    let stop = if err.is::<Halted>() { env.as_mut(store).stop.take() } else { None };
    Some(match stop {
        Some(Stop::Exit(code)) => Ended::Exit(code),
        Some(Stop::OutputTooLarge { cap }) => Ended::OutputTooLarge(cap),
        Some(Stop::Timeout) => Ended::Timeout,
        Some(stop @ Stop::HostBudget { .. }) => Ended::HostBudget(stop.to_string()),
        None if deadline.fired() => Ended::Timeout,
        None => Ended::Trap(err.message()),
    })
}

fn respond(
    req: &InvocationRequest,
    worker_id: &str,
    ended: Ended,
    process: Process,
    fuel_used: u64,
    peak_memory: u64,
    wall: Duration,
) -> InvocationResponse {
    let Process { stdout, mut stderr, calls, resource_urls, .. } = process;
    let bytes_out = stdout.len() as u64;
    let mut resp = InvocationResponse {
        invocation_id: req.invocation_id.clone(),
        worker_id: worker_id.to_owned(),
        ..Default::default()
    };
    let (outcome, exit_code, error) = match ended {
        Ended::Exit(0) => match cgi::parse_output(Bytes::from(stdout)) {
            Ok(out) => {
                resp.status = u32::from(out.status);
                // What the policy refuses is dropped here (the gateway
                // refuses it again), and said in the call's log.
                resp.headers = out
                    .headers
                    .into_iter()
                    .filter(|h| match olin_proto::header_policy::response_header_refused(&h.name, req.own_origin) {
                        None => true,
                        Some(why) => {
                            stderr.push(
                                format!("WARN: olincloud: response header {} dropped: {why}\n", h.name).as_bytes(),
                            );
                            false
                        }
                    })
                    .collect();
                resp.body = out.body;
                (Outcome::Ok, 0, String::new())
            }
            Err(e) => (Outcome::BadCgiOutput, 0, e.to_string()),
        },
        Ended::Exit(code) => (Outcome::GuestError, code, format!("the function exited with code {code}")),
        Ended::OutputTooLarge(cap) => {
            (Outcome::OutputTooLarge, -1, format!("the function wrote more than {cap} bytes to stdout"))
        }
        Ended::Fuel => (Outcome::FuelExhausted, -1, "the function ran out of fuel".to_owned()),
        Ended::Timeout => (Outcome::Timeout, -1, "the function ran past its wall-clock limit".to_owned()),
        Ended::Memory(msg) => (Outcome::MemoryExceeded, -1, format!("the function exceeded its memory limit ({msg})")),
        Ended::HostBudget(msg) => {
            (Outcome::MemoryExceeded, -1, format!("the function exceeded its host budget: {msg}"))
        }
        Ended::Trap(msg) => (Outcome::GuestError, -1, format!("the function trapped: {msg}")),
    };
    resp.stderr_tail = stderr.into_bytes();
    resp.outcome = outcome as i32;
    resp.exit_code = exit_code;
    resp.error = error;
    if outcome != Outcome::Ok {
        resp.status = u32::from(outcome.http_status());
    }
    resp.usage = Some(Usage {
        wall_us: wall.as_micros() as u64,
        fuel_used,
        peak_memory_bytes: peak_memory,
        host_calls: calls.into_iter().map(|(name, count)| HostCall { name: name.to_owned(), count }).collect(),
        bytes_in: req.body.len() as u64,
        bytes_out,
        resource_urls: resource_urls.urls,
        resource_urls_truncated: resource_urls.truncated,
    });
    resp
}
