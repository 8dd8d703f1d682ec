//! Login sessions: random tokens in cookies, kept only in the server's memory.
//!
//! A restart logs everyone out, which is the safe direction. Each session carries its own CSRF
//! token; a session ends after `idle_timeout` without a request or `absolute_lifetime` after
//! login, whichever comes first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use store::Actor;

pub const COOKIE: &str = "scribe_session";

/// 256 random bits, hex.
pub fn random_token() -> String {
    use ring::rand::SecureRandom;
    let mut buf = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut buf)
        .expect("the OS random number generator is available");
    hex::encode(buf)
}

/// Compares secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug, Clone)]
pub struct Session {
    pub actor: Actor,
    pub csrf: String,
    created: Instant,
    last_seen: Instant,
}

/// Why a cookie did not lead to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSession {
    Missing,
    Expired,
}

pub struct Sessions {
    by_token: Mutex<HashMap<String, Session>>,
    idle_timeout: Duration,
    absolute_lifetime: Duration,
}

impl Sessions {
    pub fn new(idle_timeout: Duration, absolute_lifetime: Duration) -> Sessions {
        Sessions {
            by_token: Mutex::new(HashMap::new()),
            idle_timeout,
            absolute_lifetime,
        }
    }

    /// Starts a session for a user who just logged in and returns its token. A token the browser
    /// presented before logging in is never reused (no session fixation): the caller ends it.
    pub fn start(&self, actor: Actor) -> String {
        let token = random_token();
        let now = Instant::now();
        let mut map = self.by_token.lock().expect("sessions lock");
        map.retain(|_, s| !self.expired(s, now));
        map.insert(
            token.clone(),
            Session {
                actor,
                csrf: random_token(),
                created: now,
                last_seen: now,
            },
        );
        token
    }

    /// The live session for `token`, touched (idle timer restarted).
    pub fn touch(&self, token: &str) -> Result<Session, NoSession> {
        self.live(token, true)
    }

    /// The live session for `token`, without restarting its idle timer: for requests a page makes
    /// by itself (its automatic refresh), which are not the user's activity.
    pub fn peek(&self, token: &str) -> Result<Session, NoSession> {
        self.live(token, false)
    }

    fn live(&self, token: &str, activity: bool) -> Result<Session, NoSession> {
        let now = Instant::now();
        let mut map = self.by_token.lock().expect("sessions lock");
        let Some(session) = map.get_mut(token) else {
            return Err(NoSession::Missing);
        };
        if self.expired(session, now) {
            map.remove(token);
            return Err(NoSession::Expired);
        }
        if activity {
            session.last_seen = now;
        }
        Ok(session.clone())
    }

    /// Ends every session of the user `name` (their account was disabled or its password reset).
    pub fn end_user(&self, name: &str) {
        self.by_token
            .lock()
            .expect("sessions lock")
            .retain(|_, s| s.actor.name != name);
    }

    pub fn end(&self, token: &str) {
        self.by_token.lock().expect("sessions lock").remove(token);
    }

    fn expired(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.last_seen) > self.idle_timeout || now.duration_since(s.created) > self.absolute_lifetime
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::Role;

    #[test]
    fn idle_sessions_expire_and_tokens_are_unique() {
        let sessions = Sessions::new(Duration::from_millis(50), Duration::from_secs(60));
        let actor = Actor {
            name: "a".into(),
            role: Role::Physician,
            source: None,
        };
        let t1 = sessions.start(actor.clone());
        let t2 = sessions.start(actor);
        assert_ne!(t1, t2);
        assert_eq!(t1.len(), 64);
        assert!(sessions.touch(&t1).is_ok());
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(sessions.touch(&t1).unwrap_err(), NoSession::Expired);
        assert_eq!(sessions.touch(&t1).unwrap_err(), NoSession::Missing);
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("abc", "ab"));
    }
}
