import { useEffect, useRef, useState } from "react";
import { api } from "../api/client";
import { PreviewRunner, type PreviewState } from "../lib/preview";

/** Hours a preview looks back: the day a new topic's figures would start from. */
export const PREVIEW_HOURS = 24;

/** The preview of `query` as it is typed (debounced, latest only; see ../lib/preview). */
export function useTopicPreview(query: string): PreviewState {
  const [state, setState] = useState<PreviewState>({ query: "", pending: false });
  const runner = useRef<PreviewRunner | null>(null);
  useEffect(() => {
    const r = new PreviewRunner((q, signal) => api.previewTopic(q, PREVIEW_HOURS, signal), setState);
    runner.current = r;
    return () => r.stop();
  }, []);
  useEffect(() => runner.current?.set(query), [query]);
  return state;
}
