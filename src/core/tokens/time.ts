/**
 * Time formats callers of `az account get-access-token` parse (reference §2.4, §5.6).
 */

const pad = (n: number, width = 2): string => String(n).padStart(width, "0");

/**
 * `expiresOn` as the Azure CLI prints it: `datetime.fromtimestamp(t).strftime("%Y-%m-%d
 * %H:%M:%S.%f")`, i.e. naive LOCAL time (the process's TZ) with six fractional digits. Callers
 * parse it in local time (Terraform, Go, Python's fallback, JS's fallback), so it must not
 * carry an offset or be UTC.
 */
export function formatExpiresOn(epochSeconds: number): string {
  const d = new Date(Math.floor(epochSeconds) * 1000);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.000000`
  );
}

/** Local time with its UTC offset, for people: `2026-11-29 09:05:14 +09:00`. */
export function formatLocalWithOffset(epochSeconds: number): string {
  const d = new Date(Math.floor(epochSeconds) * 1000);
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? "+" : "-";
  const abs = Math.abs(off);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}

/** A duration for people: `59 minutes`, `1 hour 5 minutes`, `42 seconds`, `3 days 2 hours`. */
export function humanDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const unit = (n: number, name: string) => `${n} ${name}${n === 1 ? "" : "s"}`;
  if (s < 60) return unit(s, "second");
  const m = Math.floor(s / 60);
  if (m < 60) return unit(m, "minute");
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${unit(h, "hour")} ${unit(m % 60, "minute")}` : unit(h, "hour");
  const d = Math.floor(h / 24);
  return h % 24 ? `${unit(d, "day")} ${unit(h % 24, "hour")}` : unit(d, "day");
}

/** `expires in 59 minutes` / `expired 3 minutes ago`. */
export function expiresIn(expEpochSeconds: number, nowMs: number): string {
  const left = expEpochSeconds - nowMs / 1000;
  return left >= 0 ? `expires in ${humanDuration(left)}` : `expired ${humanDuration(-left)} ago`;
}
