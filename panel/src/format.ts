// Numbers and times as people read them.

/** `812 B`, `12.3 KiB`, `4.0 MiB` (binary units, as the CLI prints them). */
export function bytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return "-";
  if (n < 1024) return `${Math.round(n)} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** A duration given in microseconds: `85 µs`, `1.25 ms`, `42 ms`, `3.1 s`. */
export function micros(us: number | null | undefined): string {
  if (us === null || us === undefined || !Number.isFinite(us)) return "-";
  if (us < 1000) return `${Math.round(us)} µs`;
  if (us < 10_000) return `${(us / 1000).toFixed(2)} ms`;
  if (us < 1_000_000) return `${Math.round(us / 1000)} ms`;
  return `${(us / 1_000_000).toFixed(1)} s`;
}

/** `1,234,567` with thin grouping, for counts and fuel. */
export function count(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "-";
  return Math.round(n).toLocaleString("en-US");
}

/** An RFC 3339 time as `2026-11-30 09:12:03` (UTC), or `-`. */
export function time(iso: string | null | undefined): string {
  if (!iso) return "-";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "-";
  return d.toISOString().slice(0, 19).replace("T", " ");
}

/** How long ago `iso` was, relative to `now`: `just now`, `5 s ago`, `3 min ago`, `2 h ago`, `4 d ago`. */
export function ago(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) return "-";
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return "-";
  const s = Math.max(0, Math.round((now.getTime() - t) / 1000));
  if (s < 2) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

/** What an outcome means, in words, and whether it is the function's success. */
export function outcome(code: string): { label: string; ok: boolean } {
  const labels: Record<string, string> = {
    OK: "OK",
    GUEST_ERROR: "Function error (trap or non-zero exit)",
    TIMEOUT: "Timed out",
    FUEL_EXHAUSTED: "Out of fuel",
    MEMORY_EXCEEDED: "Out of memory",
    OUTPUT_TOO_LARGE: "Output too large",
    BAD_CGI_OUTPUT: "Bad CGI output",
    MODULE_UNAVAILABLE: "Module unavailable",
    INTERNAL: "Platform error",
  };
  return { label: labels[code] ?? code, ok: code === "OK" };
}

/** The deployed version(s) of a function: `v3`, `v3 + v4 (10%)`, or `not deployed`. */
export function deployed(d: { version: number; canary_version: number | null; canary_percent: number | null } | null): string {
  if (!d) return "not deployed";
  if (d.canary_version !== null && d.canary_percent !== null) return `v${d.version} + v${d.canary_version} (${d.canary_percent}%)`;
  return `v${d.version}`;
}

/** A function's recent call rate: `none`, `12 calls`, `12 calls, 1 failed`. */
export function rate(r: { calls: number; errors: number } | undefined): string {
  if (!r || r.calls === 0) return "none";
  const calls = `${count(r.calls)} ${r.calls === 1 ? "call" : "calls"}`;
  return r.errors > 0 ? `${calls}, ${count(r.errors)} failed` : calls;
}
