//! Logging to stderr or to syslog (`/dev/log`, RFC 3164 framing, facility daemon).

use std::os::unix::net::UnixDatagram;

/// Where log lines go.
#[derive(Debug)]
pub enum Log {
    /// stderr, one line each.
    Stderr,
    /// The syslog socket.
    Syslog(UnixDatagram),
}

/// Severities used.
#[derive(Debug, Clone, Copy)]
pub enum Level {
    /// LOG_ERR.
    Err = 3,
    /// LOG_WARNING.
    Warning = 4,
    /// LOG_INFO.
    Info = 6,
}

impl Log {
    /// stderr, or syslog when `syslog` (falls back to stderr when /dev/log is absent).
    pub fn new(syslog: bool) -> Log {
        if syslog
            && let Ok(s) = UnixDatagram::unbound()
            && s.connect("/dev/log").is_ok()
        {
            return Log::Syslog(s);
        }
        Log::Stderr
    }

    /// Writes one line.
    pub fn log(&self, level: Level, msg: &str) {
        match self {
            Log::Stderr => eprintln!("vrrpd: {msg}"),
            Log::Syslog(s) => {
                // facility LOG_DAEMON (3) << 3
                let line = format!("<{}>vrrpd[{}]: {msg}", 24 + level as u8, std::process::id());
                let _ = s.send(line.as_bytes());
            }
        }
    }
}
