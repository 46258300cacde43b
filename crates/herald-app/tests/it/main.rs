//! herald-app against real parts: git repositories, SQLite, the delivery
//! engine and receivers on 127.0.0.1.

mod monitors;
