//! The blocking driver: runs the [`Engine`]'s probes on non-blocking sockets and child processes,
//! multiplexed with `poll(2)`, feeds their outcomes back, and applies IPVS changes when it has a handle.
//!
//! One thread, no async runtime. A check never blocks another: every socket is non-blocking, every
//! wait has a deadline (the checker's `connect_timeout` for the connection and for each read or write,
//! as keepalived, and [`DriverOptions::max_attempt`] for a whole attempt), a response body is limited to
//! [`DriverOptions::max_body`] bytes, and a MISC_CHECK program gets SIGTERM at its `misc_timeout` and
//! SIGKILL 2 s later (its whole process group, as keepalived).

use crate::engine::{Action, CheckId, Engine, Event, Outcome, Probe};
use crate::http::Response;
use ipvs_nl::{Ipvs, Op};
use rustix::event::{PollFd, PollFlags};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use socket2::{Domain, SockAddr, Socket, Type};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Driver settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverOptions {
    /// The largest response body an HTTP/SSL check reads (default 16 MiB); more fails the check.
    pub max_body: usize,
    /// The longest a single attempt may take, whatever its progress (default 60 s).
    pub max_attempt: Duration,
}

impl Default for DriverOptions {
    fn default() -> Self {
        DriverOptions {
            max_body: 16 << 20,
            max_attempt: Duration::from_secs(60),
        }
    }
}

/// What the driver did or saw, in order.
// Transient (one per output, consumed at once): boxing the change would only add allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// An event of the engine.
    Event(Event),
    /// An IPVS change: `applied` is `None` without an IPVS handle, else the kernel's answer.
    Ipvs {
        /// The change.
        op: Op,
        /// The result when applied.
        applied: Option<Result<(), String>>,
    },
    /// A notify script was started (or could not be).
    Script {
        /// Program and arguments.
        argv: Vec<String>,
        /// The child's pid, or why it did not start.
        started: Result<u32, String>,
    },
    /// An attempt ended.
    Checked {
        /// Which checker.
        id: CheckId,
        /// How.
        outcome: Outcome,
    },
}

/// Accepts any server certificate: SSL_GET without an `SSL { ca }` block does not verify, as keepalived.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// An HTTP exchange in progress.
#[derive(Debug)]
struct Exchange {
    stream: TcpStream,
    tls: Option<Box<rustls::ClientConnection>>,
    request: Vec<u8>,
    written: usize,
    response: Response,
    url: crate::config::Url,
}

#[derive(Debug)]
enum State {
    /// A TCP connect in progress; `http` carries what to do once connected.
    Connecting {
        sock: Socket,
        http: Option<HttpPlan>,
    },
    Http(Box<Exchange>),
    Misc {
        child: Child,
        pidfd: Option<OwnedFd>,
        /// 0 running, 1 SIGTERM sent, 2 SIGKILL sent.
        killing: u8,
    },
    /// Taken apart (a placeholder while an attempt moves between states).
    Done,
}

#[derive(Debug)]
struct HttpPlan {
    tls: bool,
    sni: Option<String>,
    request: Vec<u8>,
    url: crate::config::Url,
}

#[derive(Debug)]
struct Inflight {
    id: CheckId,
    /// The current wait's deadline.
    deadline: Instant,
    /// The whole attempt's deadline.
    hard: Instant,
    /// The per-wait timeout.
    timeout: Duration,
    state: State,
    /// What a timeout means in the current state.
    timeout_reason: &'static str,
}

/// The blocking driver (see the module docs).
#[derive(Debug)]
pub struct Driver {
    engine: Engine,
    ipvs: Option<Ipvs>,
    opts: DriverOptions,
    inflight: Vec<Inflight>,
    outputs: VecDeque<Output>,
    scripts: Vec<Child>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

fn err_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

impl Driver {
    /// A driver for `engine` that applies nothing (IPVS changes are only reported).
    pub fn new(engine: Engine) -> Self {
        Driver {
            engine,
            ipvs: None,
            opts: DriverOptions::default(),
            inflight: Vec::new(),
            outputs: VecDeque::new(),
            scripts: Vec::new(),
            tls: None,
        }
    }

    /// Applies IPVS changes through `ipvs` from now on.
    pub fn with_ipvs(mut self, ipvs: Ipvs) -> Self {
        self.ipvs = Some(ipvs);
        self
    }

    /// Sets the options.
    pub fn with_options(mut self, opts: DriverOptions) -> Self {
        self.opts = opts;
        self
    }

    /// The engine (for `status`).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, to feed it inputs such as [`Engine::set_address_present`]; call
    /// [`Driver::run_once`] afterwards so its actions are carried out.
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// The next output.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Builds the IPVS table and schedules the checks.
    pub fn start(&mut self) {
        self.engine.start(Instant::now());
        self.drain(Instant::now());
    }

    /// Loads a new configuration (see [`Engine::reload`]); attempts in flight are abandoned.
    pub fn reload(&mut self, config: Vec<crate::config::VirtualServer>) {
        self.abandon_all();
        self.engine.reload(Instant::now(), config);
        self.drain(Instant::now());
    }

    /// Removes what the engine added and stops every attempt.
    pub fn stop(&mut self) {
        self.abandon_all();
        self.engine.stop(Instant::now());
        self.drain(Instant::now());
        self.reap_scripts();
    }

    fn abandon_all(&mut self) {
        for f in self.inflight.drain(..) {
            if let State::Misc { mut child, .. } = f.state {
                kill_group(&child, rustix::process::Signal::KILL);
                let _ = child.wait();
            }
        }
    }

    /// Carries out the engine's actions.
    fn drain(&mut self, now: Instant) {
        while let Some(a) = self.engine.poll_action() {
            match a {
                Action::Ipvs(op) => {
                    let applied = self.ipvs.as_mut().map(|h| apply(h, &op));
                    self.outputs.push_back(Output::Ipvs { op, applied });
                }
                Action::Check(id, probe) => self.begin(now, id, probe),
                Action::Script(argv) => {
                    let started = spawn(&argv).map(|c| {
                        let pid = c.id();
                        self.scripts.push(c);
                        pid
                    });
                    self.outputs.push_back(Output::Script { argv, started });
                }
                Action::Event(e) => self.outputs.push_back(Output::Event(e)),
            }
        }
    }

    fn finish(&mut self, now: Instant, id: CheckId, outcome: Outcome) {
        self.outputs.push_back(Output::Checked {
            id,
            outcome: outcome.clone(),
        });
        self.engine.handle_result(now, id, outcome);
    }

    /// Starts one attempt; a failure to even start is reported at once.
    fn begin(&mut self, now: Instant, id: CheckId, probe: Probe) {
        let hard = now + self.opts.max_attempt;
        match probe {
            Probe::Tcp {
                target,
                bind,
                timeout,
            } => match connect(target, bind) {
                Ok(sock) => self.inflight.push(Inflight {
                    id,
                    deadline: now + timeout,
                    hard,
                    timeout,
                    state: State::Connecting { sock, http: None },
                    timeout_reason: "Timeout connecting",
                }),
                Err(e) => self.finish(
                    now,
                    id,
                    Outcome::Failure(format!("Connection failed: {}", err_text(&e))),
                ),
            },
            Probe::Http {
                target,
                bind,
                timeout,
                tls,
                sni,
                request,
                url,
            } => match connect(target, bind) {
                Ok(sock) => self.inflight.push(Inflight {
                    id,
                    deadline: now + timeout,
                    hard,
                    timeout,
                    state: State::Connecting {
                        sock,
                        http: Some(HttpPlan {
                            tls,
                            sni,
                            request,
                            url,
                        }),
                    },
                    timeout_reason: "Timeout connecting",
                }),
                Err(e) => self.finish(
                    now,
                    id,
                    Outcome::Failure(format!("Connection failed: {}", err_text(&e))),
                ),
            },
            Probe::Misc { argv, timeout } => match spawn(&argv) {
                Ok(child) => {
                    let pidfd = rustix::process::Pid::from_raw(child.id() as i32).and_then(|p| {
                        rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
                    });
                    self.inflight.push(Inflight {
                        id,
                        deadline: now + timeout,
                        hard: now + timeout + Duration::from_secs(60),
                        timeout,
                        state: State::Misc {
                            child,
                            pidfd,
                            killing: 0,
                        },
                        timeout_reason: "timed out",
                    })
                }
                Err(e) => self.finish(now, id, Outcome::Failure(format!("cannot run: {e}"))),
            },
        }
    }

    /// When the driver next needs to run, whatever the sockets do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let probes = self.inflight.iter().map(|f| f.deadline.min(f.hard)).min();
        match (probes, self.engine.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The descriptors the driver waits on, with `(readable, writable)` interest, for embedding in
    /// another poll loop: call [`Driver::run_once`] with a zero wait when one is ready or at
    /// [`Driver::next_deadline`].
    pub fn fds(&self) -> Vec<(BorrowedFd<'_>, bool, bool)> {
        self.inflight
            .iter()
            .filter_map(|f| interest(&f.state))
            .collect()
    }

    /// One turn: starts the checks that are due, waits (at most `max_wait`, `None` for as long as
    /// needed) for sockets and children, advances every attempt, feeds the outcomes to the engine and
    /// carries out its actions. Returns after one wait.
    pub fn run_once(&mut self, max_wait: Option<Duration>) -> io::Result<()> {
        let now = Instant::now();
        self.engine.handle_timeout(now);
        self.drain(now);
        self.reap_scripts();
        let mut wait = self
            .next_deadline()
            .map(|d| d.saturating_duration_since(now));
        if let Some(m) = max_wait {
            wait = Some(wait.map_or(m, |w| w.min(m)));
        }
        // Which attempts have a ready descriptor (by position in `inflight`).
        let mut ready = vec![false; self.inflight.len()];
        {
            let mut slots = Vec::with_capacity(self.inflight.len());
            let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(self.inflight.len());
            for (i, f) in self.inflight.iter().enumerate() {
                if let Some((fd, r, w)) = interest(&f.state) {
                    let mut fl = PollFlags::empty();
                    if r {
                        fl |= PollFlags::IN;
                    }
                    if w {
                        fl |= PollFlags::OUT;
                    }
                    fds.push(PollFd::from_borrowed_fd(fd, fl));
                    slots.push(i);
                } else {
                    // No descriptor (a child without a pidfd): look at it every turn.
                    ready[i] = true;
                }
            }
            let ts = wait.map(|w| rustix::event::Timespec {
                tv_sec: w.as_secs() as i64,
                tv_nsec: i64::from(w.subsec_nanos()),
            });
            match rustix::event::poll(&mut fds, ts.as_ref()) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
            for (pfd, &i) in fds.iter().zip(&slots) {
                if !pfd.revents().is_empty() {
                    ready[i] = true;
                }
            }
        }
        // Advance the attempts that are ready or past a deadline. Each reads at most READ_BUDGET bytes
        // per turn, so a fast sender cannot starve the others.
        // One clock reading for the whole turn (the attempts take microseconds each).
        let now = Instant::now();
        let mut i = 0;
        while i < self.inflight.len() {
            let f = &self.inflight[i];
            if !ready[i] && now < f.deadline.min(f.hard) {
                i += 1;
                continue;
            }
            match self.advance(i, now, ready[i]) {
                Some(outcome) => {
                    let f = self.inflight.swap_remove(i);
                    ready.swap_remove(i);
                    self.finish(now, f.id, outcome);
                }
                None => i += 1,
            }
        }
        self.engine.handle_timeout(now);
        self.drain(now);
        Ok(())
    }

    fn reap_scripts(&mut self) {
        self.scripts
            .retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_))));
    }

    /// Moves attempt `i` forward; `Some` when it ended. `ready`: poll(2) reported its descriptor.
    fn advance(&mut self, i: usize, now: Instant, ready: bool) -> Option<Outcome> {
        let max_body = self.opts.max_body;
        let f = &mut self.inflight[i];
        if now >= f.hard && !matches!(f.state, State::Misc { .. }) {
            return Some(Outcome::Failure(format!(
                "attempt took longer than {:?}",
                self.opts.max_attempt
            )));
        }
        match &mut f.state {
            State::Connecting { sock, http } => {
                match sock.take_error() {
                    Ok(Some(e)) => {
                        return Some(Outcome::Failure(format!(
                            "Connection failed: {}",
                            err_text(&e)
                        )));
                    }
                    Err(e) => return Some(Outcome::Failure(err_text(&e))),
                    Ok(None) => {}
                }
                // Connected: a connecting TCP socket polls writable only once the handshake is over
                // (tcp_poll), and then SO_ERROR above tells success from failure. Woken by a deadline
                // instead, the peer address tells (getpeername: ENOTCONN while in progress).
                if !ready && sock.peer_addr().is_err() {
                    if now >= f.deadline {
                        return Some(Outcome::Failure(f.timeout_reason.to_string()));
                    }
                    return None;
                }
                let Some(plan) = http.take() else {
                    return Some(Outcome::Success);
                };
                let sock = match std::mem::replace(&mut f.state, State::Done) {
                    State::Connecting { sock, .. } => sock,
                    _ => return Some(Outcome::Failure("internal state".into())),
                };
                let stream: TcpStream = sock.into();
                let tls = if plan.tls {
                    let cfg = match &self.tls {
                        Some(c) => c.clone(),
                        None => match tls_config() {
                            Ok(c) => {
                                self.tls = Some(c.clone());
                                c
                            }
                            Err(e) => return Some(Outcome::Failure(format!("TLS: {e}"))),
                        },
                    };
                    let name = match plan.sni.clone().map(ServerName::try_from) {
                        Some(Ok(n)) => n,
                        _ => match stream.peer_addr() {
                            Ok(a) => ServerName::IpAddress(a.ip().into()),
                            Err(e) => return Some(Outcome::Failure(err_text(&e))),
                        },
                    };
                    match rustls::ClientConnection::new(cfg, name) {
                        Ok(c) => Some(Box::new(c)),
                        Err(e) => return Some(Outcome::Failure(format!("TLS: {e}"))),
                    }
                } else {
                    None
                };
                let f = &mut self.inflight[i];
                f.deadline = now + f.timeout;
                f.timeout_reason = if tls.is_some() {
                    "Timeout connecting"
                } else {
                    "Timeout WEB write"
                };
                f.state = State::Http(Box::new(Exchange {
                    stream,
                    tls,
                    request: plan.request,
                    written: 0,
                    response: Response::new(&plan.url, max_body),
                    url: plan.url,
                }));
                self.advance(i, now, ready)
            }
            State::Http(x) => {
                let progress = match step_http(x) {
                    Ok(Step::Done) => {
                        let State::Http(x) = std::mem::replace(&mut f.state, State::Done) else {
                            return Some(Outcome::Failure("internal state".into()));
                        };
                        let x = *x;
                        return Some(match x.response.finish(&x.url) {
                            Ok(()) => Outcome::Success,
                            Err(e) => Outcome::Failure(e.to_string()),
                        });
                    }
                    Ok(Step::Progress(p)) => p,
                    Err(e) => return Some(Outcome::Failure(e)),
                };
                if progress {
                    f.deadline = now + f.timeout;
                    f.timeout_reason = if x.tls.as_ref().is_some_and(|t| t.is_handshaking()) {
                        "Timeout connecting"
                    } else if x.written < x.request.len() {
                        "Timeout WEB write"
                    } else {
                        "Timeout HTTP read"
                    };
                } else if now >= f.deadline {
                    return Some(Outcome::Failure(f.timeout_reason.to_string()));
                }
                None
            }
            State::Misc { child, killing, .. } => {
                match child.try_wait() {
                    Ok(Some(st)) => {
                        return Some(if *killing > 0 {
                            Outcome::TimedOut
                        } else if let Some(code) = st.code() {
                            Outcome::Exited(code as u8)
                        } else {
                            Outcome::Signaled(st.signal().unwrap_or(0))
                        });
                    }
                    Ok(None) => {}
                    Err(e) => return Some(Outcome::Failure(err_text(&e))),
                }
                if now >= f.deadline {
                    // keepalived: SIGTERM to the group, SIGKILL 2 s later.
                    let sig = if *killing == 0 {
                        rustix::process::Signal::TERM
                    } else {
                        rustix::process::Signal::KILL
                    };
                    kill_group(child, sig);
                    *killing = (*killing + 1).min(2);
                    f.deadline = now + Duration::from_secs(2);
                }
                None
            }
            State::Done => Some(Outcome::Failure("internal state".into())),
        }
    }
}

enum Step {
    /// The response ended.
    Done,
    /// Whether bytes moved.
    Progress(bool),
}

/// Bytes an attempt reads per turn before the others get theirs.
const READ_BUDGET: usize = 256 * 1024;

/// Moves an HTTP exchange as far as the socket allows without blocking (at most [`READ_BUDGET`]
/// bytes read).
fn step_http(x: &mut Exchange) -> Result<Step, String> {
    let Exchange {
        stream,
        tls,
        request,
        written,
        response,
        ..
    } = x;
    let mut progress = false;
    let mut buf = [0u8; 16 * 1024];
    let mut budget = READ_BUDGET;
    if let Some(tls) = tls {
        loop {
            // Send what TLS has to send.
            while tls.wants_write() {
                match tls.write_tls(stream) {
                    Ok(0) => break,
                    Ok(_) => progress = true,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        return Err(format!(
                            "SSL handshake/communication error: {}",
                            err_text(&e)
                        ));
                    }
                }
            }
            if !tls.is_handshaking() && *written < request.len() {
                match tls.writer().write(&request[*written..]) {
                    Ok(n) => {
                        *written += n;
                        progress = true;
                        continue;
                    }
                    Err(e) => return Err(format!("Cannot send get request: {}", err_text(&e))),
                }
            }
            // Read what the server sent.
            let mut read_any = false;
            if budget == 0 {
                return Ok(Step::Progress(true));
            }
            match tls.read_tls(stream) {
                Ok(0) => {
                    // The TCP stream ended: what was decrypted so far is the response.
                    if tls.is_handshaking() {
                        return Err("SSL handshake/communication error: connection closed".into());
                    }
                    drain_plain(tls, response, &mut buf)?;
                    return Ok(Step::Done);
                }
                Ok(n) => {
                    read_any = true;
                    progress = true;
                    budget = budget.saturating_sub(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    return Err(format!(
                        "SSL handshake/communication error: {}",
                        err_text(&e)
                    ));
                }
            }
            if let Err(e) = tls.process_new_packets() {
                let _ = tls.write_tls(stream);
                return Err(format!("SSL handshake/communication error: {e}"));
            }
            if drain_plain(tls, response, &mut buf)? {
                return Ok(Step::Done);
            }
            if !read_any && !tls.wants_write() {
                return Ok(Step::Progress(progress));
            }
        }
    }
    if *written < request.len() {
        while *written < request.len() {
            match stream.write(&request[*written..]) {
                Ok(n) => {
                    *written += n;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(Step::Progress(progress));
                }
                Err(e) => return Err(format!("Cannot send get request: {}", err_text(&e))),
            }
        }
        // Wait for poll(2) to say the answer is there: a read right now would nearly always find
        // nothing (EAGAIN), one system call per check for nothing.
        return Ok(Step::Progress(true));
    }
    loop {
        if budget == 0 {
            return Ok(Step::Progress(true));
        }
        match stream.read(&mut buf) {
            Ok(0) => return Ok(Step::Done),
            Ok(n) => {
                progress = true;
                budget = budget.saturating_sub(n);
                response.feed(&buf[..n]).map_err(|e| e.to_string())?;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Step::Progress(progress)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("Read error: {}", err_text(&e))),
        }
    }
}

/// Feeds the decrypted bytes to the response; true at the end of the TLS stream.
fn drain_plain(
    tls: &mut rustls::ClientConnection,
    response: &mut Response,
    buf: &mut [u8],
) -> Result<bool, String> {
    loop {
        match tls.reader().read(buf) {
            Ok(0) => return Ok(true),
            Ok(n) => response.feed(&buf[..n]).map_err(|e| e.to_string())?,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            // A server that closes without close_notify ends the response, as OpenSSL's
            // SSL_read returning 0 does for keepalived.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(true),
            Err(e) => return Err(format!("SSL read error: {}", err_text(&e))),
        }
    }
}

fn interest(s: &State) -> Option<(BorrowedFd<'_>, bool, bool)> {
    match s {
        State::Connecting { sock, .. } => Some((sock.as_fd(), false, true)),
        State::Http(x) => {
            let w = match &x.tls {
                Some(t) => t.wants_write() || (!t.is_handshaking() && x.written < x.request.len()),
                None => x.written < x.request.len(),
            };
            Some((x.stream.as_fd(), true, w))
        }
        State::Misc { pidfd, .. } => pidfd.as_ref().map(|p| (p.as_fd(), true, false)),
        State::Done => None,
    }
}

/// A non-blocking TCP socket, bound if asked, with its connect started.
fn connect(target: SocketAddr, bind: Option<SocketAddr>) -> io::Result<Socket> {
    // SOCK_NONBLOCK | SOCK_CLOEXEC at creation: one system call instead of three.
    let sock = Socket::new(
        Domain::for_address(target),
        Type::STREAM.nonblocking(),
        None,
    )?;
    if let Some(b) = bind {
        sock.set_reuse_address(true)?;
        sock.bind(&SockAddr::from(b))?;
    }
    match sock.connect(&SockAddr::from(target)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(sock)
}

/// Starts `argv` in its own process group, with no standard streams.
fn spawn(argv: &[String]) -> Result<Child, String> {
    let Some((prog, args)) = argv.split_first() else {
        return Err("empty command".into());
    };
    Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("{prog}: {}", err_text(&e)))
}

fn kill_group(child: &Child, sig: rustix::process::Signal) {
    if let Some(p) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process_group(p, sig);
    }
}

/// Applies one change the way keepalived's `ipvs_talk` does: an add that finds the entry, or a delete
/// that does not, is fine; an edit that finds nothing adds.
fn apply(ipvs: &mut Ipvs, op: &Op) -> Result<(), String> {
    let r = match ipvs.exec(op) {
        Err(ipvs_nl::Error::NotFound) if matches!(op, Op::EditDest(..)) => {
            if let Op::EditDest(k, d) = op {
                ipvs.exec(&Op::AddDest(*k, d.clone()))
            } else {
                Ok(())
            }
        }
        r => r,
    };
    match (r, op) {
        (Ok(()), _) => Ok(()),
        (Err(ipvs_nl::Error::Exists), Op::AddService(_) | Op::AddDest(..)) => Ok(()),
        (
            Err(ipvs_nl::Error::NotFound | ipvs_nl::Error::NoSuchService),
            Op::DelService(_) | Op::DelDest(..),
        ) => Ok(()),
        (Err(e), _) => Err(e.to_string()),
    }
}
