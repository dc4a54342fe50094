// The colour theme: the one chosen last in this browser, else the system's.
import { useEffect, useState } from "react";

/** The theme to start with. */
export function storedTheme(): string {
  return localStorage.getItem("pulse-theme") ?? (matchMedia("(prefers-color-scheme: light)").matches ? "light" : "dark");
}

/** Applies `theme` to the page (the stylesheet keys its colours on `data-theme`). */
export function applyTheme(theme: string): void {
  document.documentElement.dataset.theme = theme;
}

/** The theme and its toggle; the choice is remembered. */
export function useTheme(): [string, () => void] {
  const [theme, setTheme] = useState(storedTheme);
  useEffect(() => {
    applyTheme(theme);
    localStorage.setItem("pulse-theme", theme);
  }, [theme]);
  return [theme, () => setTheme((t) => (t === "dark" ? "light" : "dark"))];
}
