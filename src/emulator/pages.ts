/** HTML pages of the emulator's sign-in experience. */
import { escapeHtml } from "./http.js";

export function layout(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body>${body}</body></html>`;
}

export function errorPage(_ctx: unknown, code: string, message: string): string {
  return layout(
    "Sign in error",
    `<h1>Sign in error</h1><p id="error" role="alert">${escapeHtml(code)}: ${escapeHtml(message)}</p>`,
  );
}
