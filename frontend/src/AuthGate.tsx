import { lazy, Suspense, useEffect, useSyncExternalStore } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { fetchAuthStatus, mayEditTopics, session } from "./api/auth";
import { Account, OpenModeBanner, SignIn, Splash } from "./components/Auth";
import { applyTheme, storedTheme } from "./lib/theme";

/**
 * The dashboard's code is its own chunk, so the sign-in screen does not wait for it; it is
 * requested as this module runs, in parallel with the server's authentication status.
 */
const dashboard = import("./App");
const App = lazy(() => dashboard.then((m) => ({ default: m.App })));

/** What shows while the dashboard's chunk arrives: the splash, which takes the same place. */
function Loading() {
  return <Splash><p className="muted">Loading…</p></Splash>;
}

/**
 * What the page shows first: the server's authentication mode decides between the dashboard
 * under a warning (open mode), the sign-in screen, and the dashboard of a signed-in key.
 */
export function AuthGate() {
  const state = useSyncExternalStore(session.subscribe, session.getState);
  const queryClient = useQueryClient();
  const status = useQuery({ queryKey: ["auth-status"], queryFn: () => fetchAuthStatus(), staleTime: Infinity, retry: 3 });

  useEffect(() => applyTheme(storedTheme()), []);
  useEffect(() => {
    if (status.data) void session.start(status.data.mode);
  }, [status.data]);
  // What one key fetched is not shown to whoever signs in next.
  useEffect(() => {
    if (state.status === "signedOut") queryClient.removeQueries({ predicate: (q) => q.queryKey[0] !== "auth-status" });
  }, [state.status, queryClient]);

  switch (state.status) {
    case "open":
      return (
        <>
          <OpenModeBanner />
          <Suspense fallback={<Loading />}>
            <App admin canEditTopics />
          </Suspense>
        </>
      );
    case "signedIn":
      return (
        <Suspense fallback={<Loading />}>
          <App
            admin={state.role === "admin"}
            canEditTopics={mayEditTopics(state.role)}
            account={<Account role={state.role} onSignOut={() => session.signOut()} />}
          />
        </Suspense>
      );
    case "signedOut":
      return <SignIn notice={state.notice} busy={false} onSubmit={(key) => void session.signIn(key).catch(() => {})} />;
    case "signingIn":
      if (!state.restoring) return <SignIn busy onSubmit={() => {}} />;
      return <Splash><p className="muted">Signing in…</p></Splash>;
    case "checking":
      if (status.isError) {
        return (
          <Splash>
            <p className="error" role="alert">
              Could not reach Pulse: {status.error.message}
            </p>
            <button type="button" className="btn" onClick={() => void status.refetch()}>
              Try again
            </button>
          </Splash>
        );
      }
      return <Splash><p className="muted">Connecting…</p></Splash>;
  }
}
