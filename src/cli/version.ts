declare const __AZKEEP_VERSION__: string | undefined;

/** Set by the esbuild bundle; `0.0.0-dev` when run from source through tsx. */
export const VERSION: string = typeof __AZKEEP_VERSION__ === "string" ? __AZKEEP_VERSION__ : "0.0.0-dev";

declare const __AZKEEP_BUILD__: string | undefined;

/** The commit and date of the build (set by scripts/build.mjs); `source` under tsx. */
export const BUILD: string = typeof __AZKEEP_BUILD__ === "string" ? __AZKEEP_BUILD__ : "source";
