import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_SEED, SeedError, parseSeed, type Seed } from "../../src/emulator/index.js";

const T1 = "11111111-1111-1111-1111-111111111111";

function minimal(): Record<string, unknown> {
  return {
    tenants: [{ id: T1, domain: "a.test", displayName: "A" }],
    users: [
      { upn: "u@a.test", password: "p", objectId: "aaaaaaaa-0000-4000-8000-000000000001", homeTenant: T1 },
    ],
    apps: [],
    subscriptions: [],
  };
}

describe("emulator: seed", () => {
  it("the default seed has what the issue asks for", () => {
    const s: Seed = parseSeed(DEFAULT_SEED);
    assert.ok(s.tenants.length >= 2);
    const guest = s.users.find((u) => (u.guestIn ?? []).length > 0);
    assert.ok(guest, "a user who is a guest in another tenant");
    assert.ok(
      s.tenants.some((t) => t.requireMfa),
      "an MFA tenant",
    );
    assert.ok(
      s.tenants.some(
        (t) => !s.subscriptions.some((x) => x.tenant === t.id || (x.managedByTenants ?? []).includes(t.id)),
      ),
      "a tenant with no subscriptions",
    );
    assert.ok(
      s.subscriptions.some((x) => x.state === "Disabled"),
      "a disabled subscription",
    );
    const sp = s.apps.find(
      (a) => a.secrets?.length && a.certificates?.length && a.federatedCredentials?.length,
    );
    assert.ok(sp, "a service principal with a secret, a certificate and a federated credential");
    assert.ok(s.apps.some((a) => a.clientId === "04b07795-8ddb-461a-bbee-02f9e1bf7b46" && a.publicClient));
  });

  it("names the first problem of a bad seed by its path", () => {
    const cases: [(s: Record<string, unknown>) => void, RegExp][] = [
      [(s) => (s.tenants = []), /^seed\.tenants: needs at least one tenant/],
      [
        (s) => ((s.tenants as Record<string, unknown>[])[0]!.id = "nope"),
        /^tenants\[0\]\.id: "nope" is not a GUID/,
      ],
      [
        (s) =>
          ((s.users as Record<string, unknown>[])[0]!.homeTenant = "22222222-2222-2222-2222-222222222222"),
        /^users\[0\]\.homeTenant: .* is not a tenant id of the seed/,
      ],
      [
        (s) => ((s.users as Record<string, unknown>[])[0]!.upn = "nobody"),
        /^users\[0\]\.upn: "nobody" is not a user principal name/,
      ],
      [
        (s) => (s.users = [...(s.users as unknown[]), ...(s.users as unknown[])]),
        /^users\[1\]\.upn: .* appears twice/,
      ],
      [
        (s) => (s.apps = [{ clientId: T1, displayName: "x", publicClient: true, secrets: [{ value: "s" }] }]),
        /^apps\[0\]: a public client cannot have secrets/,
      ],
      [
        (s) => (s.apps = [{ clientId: T1, displayName: "x", certificates: [{ pem: "x" }] }]),
        /^apps\[0\]\.certificates\[0\]\.pem: must be a PEM certificate/,
      ],
      [
        (s) => (s.subscriptions = [{ id: T1, displayName: "s", tenant: T1, access: [], state: "Gone" }]),
        /^subscriptions\[0\]\.state: must be one of/,
      ],
      [
        (s) => (s.subscriptions = [{ id: T1, displayName: "s", tenant: T1 }]),
        /^subscriptions\[0\]\.access: must be an array/,
      ],
      [
        (s) =>
          (s.subscriptions = [
            {
              id: T1,
              displayName: "s",
              tenant: T1,
              access: [],
              resourceGroups: [{ name: "bad/name", location: "x" }],
            },
          ]),
        /resourceGroups\[0\]\.name/,
      ],
    ];
    for (const [mutate, message] of cases) {
      const s = minimal();
      mutate(s);
      assert.throws(
        () => parseSeed(s),
        (e: unknown) => e instanceof SeedError && message.test(e.message),
      );
    }
    assert.throws(() => parseSeed([]), /seed: must be an object/);
    assert.throws(() => parseSeed(null), /seed: must be an object/);
  });

  it("lower-cases GUIDs so lookups are case-insensitive", () => {
    // GUIDs with letters: an all-digit GUID is the same upper-cased, and could not show anything.
    const tenant = "abcdef01-2345-4678-9abc-def012345678";
    const oid = "aaaaaaaa-0000-4000-8000-00000000000f";
    const s = minimal();
    (s.tenants as Record<string, unknown>[])[0]!.id = tenant.toUpperCase();
    const user = (s.users as Record<string, unknown>[])[0]!;
    user.homeTenant = "AbCdEf01-2345-4678-9aBc-DeF012345678";
    user.objectId = oid.toUpperCase();
    assert.notEqual(tenant.toUpperCase(), tenant, "the input really is upper case");
    const parsed = parseSeed(s);
    assert.equal(parsed.tenants[0]!.id, tenant);
    assert.equal(parsed.users[0]!.homeTenant, tenant, "found the tenant whatever the case");
    assert.equal(parsed.users[0]!.objectId, oid);
  });
});
