//! `imgest-server`: run the service, or sign a token.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use imgest_server::{Config, auth};

#[derive(Parser)]
#[command(version, about = "imgest's reference HTTP service")]
struct Cli {
    /// Development mode: without JWT_SECRET_KEY, generate a secret for this run and print a token.
    #[arg(long, global = true)]
    dev: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Consume jobs from the Redis queue (REDIS_URL), store variants, record results.
    Worker,
    /// Print a signed token (HS256 with JWT_SECRET_KEY).
    Token {
        /// The user id (the token's `sub`).
        #[arg(long)]
        user: String,
        /// Validity in seconds.
        #[arg(long, default_value_t = 86_400)]
        ttl: u64,
        /// Grant role admin (reads the audit log).
        #[arg(long)]
        admin: bool,
    },
}

fn main() -> ExitCode {
    imgest::memory::map_large_buffers();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "imgest_server=info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        // Plain text when the log goes to a file or a collector.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let dev_secret = cli.dev.then(|| {
        use rand::Rng;
        let bytes: [u8; 32] = rand::rng().random();
        hex::encode(bytes)
    });
    let config = match Config::from_env(|k| std::env::var(k).ok(), dev_secret.clone()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("imgest-server: configuration: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Token { user, ttl, admin } => {
            match auth::sign(&config.jwt_secret, &user, ttl, admin.then_some("admin")) {
                Ok(t) => {
                    println!("{t}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("imgest-server: token: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Worker => run(imgest_server::work(config, |id| {
            println!("imgest-server worker {id} consuming");
        })),
        Command::Serve => {
            let secret = config.jwt_secret.clone();
            let generated = dev_secret.is_some()
                && std::env::var("JWT_SECRET_KEY").map_or(true, |v| v.trim().is_empty());
            run(imgest_server::serve(config, move |addr| {
                println!("imgest-server listening on http://{addr}");
                if let Some(token) = generated
                    .then(|| auth::sign(&secret, "dev", 86_400, Some("admin")).ok())
                    .flatten()
                {
                    println!(
                        "dev token (user `dev`, admin, 24 h; the secret lives only in this run):\n{token}"
                    );
                    println!(
                        "try: curl -H 'Authorization: Bearer {token}' -F file=@photo.jpg http://{addr}/api/v1/images"
                    );
                }
                println!("dashboard: http://{addr}/dashboard  API docs: http://{addr}/docs");
            }))
        }
    }
}

/// Runs `task` on a multi-threaded runtime; its error is printed and exits 1.
fn run(task: impl std::future::Future<Output = Result<(), String>>) -> ExitCode {
    let result = tokio::runtime::Runtime::new()
        .map_err(|e| e.to_string())
        .and_then(|runtime| runtime.block_on(task));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("imgest-server: {e}");
            ExitCode::FAILURE
        }
    }
}
