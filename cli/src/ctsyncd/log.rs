//! Logging the conntrackd way: `[Thu Dec  3 05:43:20 2026] (pid=N) [notice] text`, to the `LogFile`, to
//! syslog (`Syslog`, through `/dev/log`), and to the console when not running as a daemon.

use super::config::Syslog;
use std::io::Write;
use std::path::PathBuf;

/// Message priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `notice`.
    Notice,
    /// `warning`.
    Warning,
    /// `ERROR`.
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Notice => "notice",
            Level::Warning => "warning",
            Level::Error => "ERROR",
        }
    }
    fn syslog(self) -> u8 {
        match self {
            Level::Notice => 5,
            Level::Warning => 4,
            Level::Error => 3,
        }
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// One formatted line (without the newline).
pub fn line(level: Level, text: &str) -> String {
    format!(
        "[{}] (pid={}) [{}] {}",
        {
            let now = now_secs();
            ctnl::text::ctime_at(now, ctnl::TimeZone::local().offset(now))
        },
        std::process::id(),
        level.name(),
        text
    )
}

/// An error on stderr, conntrackd-style (client mode and start-up).
pub fn console_error(text: &str) {
    let _ = writeln!(std::io::stderr(), "{}", line(Level::Error, text));
}

/// Where the daemon's messages go.
#[derive(Debug)]
pub struct Logger {
    file: Option<std::fs::File>,
    path: Option<PathBuf>,
    syslog: Syslog,
    console: bool,
}

impl Logger {
    /// Opens the log file (appending, created 0600 by the daemon's umask).
    pub fn open(path: Option<PathBuf>, syslog: Syslog, console: bool) -> std::io::Result<Logger> {
        let file = match &path {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?,
            ),
            None => None,
        };
        Ok(Logger {
            file,
            path,
            syslog,
            console,
        })
    }

    /// Stops writing to the console (after daemonizing).
    pub fn detach(&mut self) {
        self.console = false;
    }

    /// The log file's path.
    pub fn path(&self) -> Option<&PathBuf> {
        self.path.as_ref()
    }

    /// Logs a message.
    pub fn log(&mut self, level: Level, text: &str) {
        let l = line(level, text);
        if self.console {
            let _ = if level == Level::Notice {
                writeln!(std::io::stdout(), "{l}")
            } else {
                writeln!(std::io::stderr(), "{l}")
            };
        }
        if let Some(f) = &mut self.file {
            let _ = writeln!(f, "{l}");
        }
        if let Syslog::Facility(fac) = self.syslog {
            let msg = format!(
                "<{}>ctsyncd[{}]: {}",
                u16::from(fac) | u16::from(level.syslog()),
                std::process::id(),
                text
            );
            if let Ok(s) = std::os::unix::net::UnixDatagram::unbound() {
                let _ = s.send_to(msg.as_bytes(), "/dev/log");
            }
        }
    }

    /// Logs a notice.
    pub fn notice(&mut self, text: &str) {
        self.log(Level::Notice, text);
    }

    /// Logs a warning.
    pub fn warning(&mut self, text: &str) {
        self.log(Level::Warning, text);
    }

    /// Logs an error.
    pub fn error(&mut self, text: &str) {
        self.log(Level::Error, text);
    }
}
