import { useEffect, useReducer, useRef, useState, type Dispatch } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { session } from "../api/auth";
import type { SubscribeFilter } from "../api/schemas";
import { counters } from "../lib/counters";
import { LiveSocket, socketUrl, type ConnectionState } from "../lib/socket";
import { initialLive, liveReducer, type LiveAction, type LiveState } from "../state/live";

/**
 * The live WebSocket and the state it feeds. The socket lives as long as the page; a change
 * of `filter` resubscribes it. After a reconnect or dropped messages the REST queries are
 * refetched, since messages are not kept for a disconnected client.
 */
export function useLive(filter: SubscribeFilter): [LiveState, Dispatch<LiveAction>, ConnectionState] {
  const [live, dispatch] = useReducer(liveReducer, initialLive);
  const [conn, setConn] = useState<ConnectionState>({ status: "connecting", attempt: 0 });
  const socketRef = useRef<LiveSocket | null>(null);
  const queryClient = useQueryClient();

  useEffect(() => {
    const s = new LiveSocket(
      async () => socketUrl(window.location, await session.token()),
      ["posts", "metrics", "alerts", "virality"],
      (batch) => {
        counters.batches++;
        counters.posts += batch.postCount;
        dispatch({ type: "batch", batch });
        if (batch.dropped) queryClient.invalidateQueries({ queryKey: ["posts"] });
      },
      (state) => {
        setConn(state);
        // The server's authentication mode is not data to catch up on.
        if (state.status === "open") queryClient.invalidateQueries({ predicate: (q) => q.queryKey[0] !== "auth-status" });
      },
      () => session.renew(),
    );
    socketRef.current = s;
    s.start(filter);
    return () => s.stop();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  const firstFilter = useRef(true);
  useEffect(() => {
    if (firstFilter.current) {
      firstFilter.current = false;
      return;
    }
    dispatch({ type: "filtersChanged" });
    socketRef.current?.setFilter(filter);
  }, [filter]);

  return [live, dispatch, conn];
}

/** Live posts per second and flushes per second over the last two seconds, for the health panel. */
export function useLiveRates(postCount: number): { posts: number; fps: number } {
  const [rates, setRates] = useState({ posts: 0, fps: 0 });
  const last = useRef({ t: performance.now(), posts: 0, batches: 0 });
  const postCountRef = useRef(0);
  postCountRef.current = postCount;
  useEffect(() => {
    const t = setInterval(() => {
      const now = performance.now();
      const dt = (now - last.current.t) / 1000;
      setRates({
        posts: (postCountRef.current - last.current.posts) / dt,
        fps: (counters.batches - last.current.batches) / dt,
      });
      last.current = { t: now, posts: postCountRef.current, batches: counters.batches };
    }, 2000);
    return () => clearInterval(t);
  }, []);
  return rates;
}
