import { useEffect, useState, type FormEvent, type ReactNode } from "react";
import { READER_ROLES, type Notice } from "../api/auth";
import type { Role } from "../api/schemas";

/** Shown above everything while the server runs without authentication; it cannot be dismissed. */
export function OpenModeBanner() {
  return (
    <div className="open-banner" role="alert" data-testid="open-mode-banner">
      <strong>⚠ This server runs without authentication.</strong> Anyone who can reach it can read and change
      everything. Only run it this way on a trusted network.
    </div>
  );
}

/** A full-page message while the page finds out whether, and how, to sign in. */
export function Splash({ children }: { children: ReactNode }) {
  return (
    <main className="splash" data-testid="splash">
      <h1>
        <span className="logo" aria-hidden="true">〰</span> Pulse
      </h1>
      {children}
    </main>
  );
}

/** Whole seconds until `at`, ticking while there are any. */
function useSecondsUntil(at: number | undefined): number {
  const [now, setNow] = useState(Date.now);
  useEffect(() => {
    if (!at) return;
    setNow(Date.now());
    const t = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(t);
  }, [at]);
  return at ? Math.max(0, Math.ceil((at - now) / 1000)) : 0;
}

/** The sign-in screen: an API key in, errors inline; `notice` says why it is shown. */
export function SignIn(props: { notice?: Notice; busy: boolean; onSubmit: (apiKey: string) => void }) {
  const [key, setKey] = useState("");
  const wait = useSecondsUntil(props.notice?.retryAt);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (key.trim() && !props.busy && wait === 0) props.onSubmit(key.trim());
  };
  return (
    <main className="sign-in" data-testid="sign-in">
      <form className="sign-in-card" onSubmit={submit} aria-labelledby="sign-in-title">
        <h1 id="sign-in-title">
          <span className="logo" aria-hidden="true">〰</span> Pulse
        </h1>
        <p className="muted">This server requires signing in with an API key that has {READER_ROLES}.</p>
        <label htmlFor="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          data-testid="api-key-input"
          autoComplete="off"
          spellCheck={false}
          placeholder="pulse_…"
          value={key}
          onChange={(e) => setKey(e.target.value)}
          aria-invalid={props.notice ? true : undefined}
          aria-describedby={props.notice ? "sign-in-error" : undefined}
          autoFocus
        />
        {props.notice && (
          <p id="sign-in-error" className="error" role="alert" data-testid="sign-in-error">
            {props.notice.message}
          </p>
        )}
        <button type="submit" className="btn primary" data-testid="sign-in-submit" disabled={props.busy || wait > 0 || !key.trim()}>
          {props.busy ? "Signing in…" : wait > 0 ? `Wait ${wait} s` : "Sign in"}
        </button>
        <p className="muted small">
          The key stays in this browser tab (session storage) until you sign out or close the tab.
        </p>
      </form>
    </main>
  );
}

/** Who is signed in, small, and the way out; for the dashboard's header. */
export function Account({ role, onSignOut }: { role: Role; onSignOut: () => void }) {
  return (
    <span className="account small">
      <span className="muted">Signed in as</span>{" "}
      <span className="role" data-testid="role" data-role={role}>
        {role}
      </span>
      <button type="button" className="btn small" data-testid="sign-out" onClick={onSignOut}>
        Sign out
      </button>
    </span>
  );
}
