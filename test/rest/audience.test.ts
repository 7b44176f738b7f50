import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BUILTIN_CLOUDS } from "../../src/core/clouds.js";
import { chooseAudience, parseKeyValues, resolveUrl } from "../../src/core/tokens/rest.js";

const cloud = BUILTIN_CLOUDS[0]!;
const ARM = "https://management.core.windows.net/";

describe("rest: which token goes where", () => {
  it("ARM URLs get an ARM token, Graph URLs a Graph token, other hosts none", () => {
    assert.equal(
      chooseAudience("https://management.azure.com/subscriptions", cloud, undefined)?.resource,
      ARM,
    );
    assert.equal(
      chooseAudience("https://graph.microsoft.com/v1.0/me", cloud, undefined)?.resource,
      "https://graph.microsoft.com/",
    );
    assert.equal(chooseAudience("https://example.com/x", cloud, undefined), undefined);
    // look-alike hosts are other hosts
    assert.equal(chooseAudience("https://management.azure.com.evil.example/x", cloud, undefined), undefined);
    assert.equal(chooseAudience("https://evil.example/management.azure.com/", cloud, undefined), undefined);
  });

  const refused: [string, string][] = [
    ["https://evil.example/x", ARM],
    ["https://evil.example/x", "https://management.azure.com/"],
    ["https://management.azure.com.evil.example/", ARM],
    ["https://graph.microsoft.com/v1.0/me", ARM],
    ["https://management.azure.com/x", "https://graph.microsoft.com"],
    ["https://evil.example/", "https://vault.azure.net"],
    ["https://evil.example/", "https://storage.azure.com/"],
  ];
  for (const [url, resource] of refused) {
    it(`refuses a ${resource} token for ${url}`, () => {
      assert.throws(
        () => chooseAudience(url, cloud, resource),
        (e: Error & { code?: string; hint?: string }) => {
          assert.equal(e.code, "bad_input");
          assert.match(e.message, /^Refusing to send a token for .* to /);
          assert.match(e.hint ?? "", /Check --url/);
          return true;
        },
      );
    });
  }

  it("allows the audience's own hosts, Key Vault and Storage subdomains, and custom resources named explicitly", () => {
    assert.ok(chooseAudience("https://management.azure.com/x", cloud, ARM));
    assert.ok(chooseAudience("https://myvault.vault.azure.net/secrets/s", cloud, "https://vault.azure.net"));
    assert.ok(chooseAudience("https://acct.blob.core.windows.net/c", cloud, "https://storage.azure.com/"));
    // A custom resource goes to its own host and subdomains, or to a host named with --token-host.
    assert.equal(
      chooseAudience("https://myapi.azurewebsites.net/x", cloud, "api://1234", ["myapi.azurewebsites.net"])
        ?.resource,
      "api://1234",
    );
    assert.ok(chooseAudience("https://api.contoso.com/v1", cloud, "https://api.contoso.com"));
    assert.ok(chooseAudience("https://eu.api.contoso.com/v1", cloud, "https://api.contoso.com/"));
  });

  const guidRefused: [string, string, RegExp][] = [
    ["https://evil.example/x", "797f4846-ba00-4fd7-ba43-dac1f8f63013", /Azure Resource Manager/],
    ["https://evil.example/x", "00000003-0000-0000-c000-000000000000", /Microsoft Graph/],
    ["https://evil.example/x", "cfa8b339-82a2-471a-a3c9-0fc0be7a4093", /Key Vault/],
    ["https://evil.example/x", "e406a681-f3d4-42a8-90b6-c2b029497af1", /Azure Storage/],
    ["https://evil.example/x", "797F4846-BA00-4FD7-BA43-DAC1F8F63013/.default", /Azure Resource Manager/],
    // An app-id URI of another built-in cloud is still that cloud's service.
    ["https://evil.example/x", "https://management.core.usgovcloudapi.net/", /Azure Resource Manager/],
    ["https://management.azure.com/x", "https://vault.usgovcloudapi.net", /Key Vault/],
  ];
  for (const [url, resource, name] of guidRefused) {
    it(`refuses ${resource} (a known service) for ${url}, even with --token-host`, () => {
      assert.throws(
        () => chooseAudience(url, cloud, resource, [new URL(url).host]),
        (e: Error & { code?: string }) => {
          assert.match(e.message, name);
          assert.match(
            e.message,
            /^Refusing to send a token for .* that host is not part of the token's audience/,
          );
          return true;
        },
      );
    });
  }

  it("well-known application ids are their service, bound to the cloud's own hosts", () => {
    assert.ok(
      chooseAudience("https://management.azure.com/x", cloud, "797f4846-ba00-4fd7-ba43-dac1f8f63013"),
    );
    assert.ok(
      chooseAudience("https://graph.microsoft.com/v1.0/me", cloud, "00000003-0000-0000-c000-000000000000"),
    );
    assert.ok(chooseAudience("https://kv1.vault.azure.net/", cloud, "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"));
    const gov = BUILTIN_CLOUDS.find((c) => c.name === "AzureUSGovernment")!;
    assert.ok(
      chooseAudience("https://management.usgovcloudapi.net/x", gov, "797f4846-ba00-4fd7-ba43-dac1f8f63013"),
    );
    assert.throws(
      () => chooseAudience("https://management.azure.com/x", gov, "797f4846-ba00-4fd7-ba43-dac1f8f63013"),
      /not part of the token's audience/,
    );
    assert.ok(
      chooseAudience("https://kv1.vault.usgovcloudapi.net/", gov, "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"),
    );
  });

  it("a custom resource is refused outside its domain, with the --token-host fix in the hint", () => {
    for (const [url, resource] of [
      ["https://evil.example/x", "api://1234"],
      ["https://api.contoso.com.evil.example/x", "https://api.contoso.com"],
      ["https://contoso.com/x", "https://api.contoso.com"],
    ] as const) {
      assert.throws(
        () => chooseAudience(url, cloud, resource),
        (e: Error & { hint?: string }) => {
          assert.match(e.message, /not in the resource's domain/);
          assert.match(e.hint ?? "", new RegExp(`--token-host ${new URL(url).host.replace(/\./g, "\\.")}`));
          return true;
        },
      );
    }
  });

  it("plain http gets no token unless the host is this machine", () => {
    assert.throws(
      () => chooseAudience("http://api.contoso.com/x", cloud, "https://api.contoso.com"),
      /plain http/,
    );
    assert.throws(
      () => chooseAudience("http://evil.example/x", cloud, "api://1234", ["evil.example"]),
      /plain http/,
    );
    assert.throws(() => chooseAudience("http://management.azure.com/x", cloud, undefined), /plain http/);
    assert.ok(chooseAudience("http://127.0.0.1:8080/x", cloud, "api://1234", ["127.0.0.1:8080"]));
    assert.ok(chooseAudience("http://localhost:8080/x", cloud, "http://localhost:8080"));
  });
});

describe("rest: URLs and key=value lists", () => {
  it("a path is an ARM path; {subscriptionId} is filled in", () => {
    assert.equal(
      resolveUrl("/subscriptions/{subscriptionId}/resourcegroups?api-version=2022-09-01", cloud, () => "s1"),
      "https://management.azure.com/subscriptions/s1/resourcegroups?api-version=2022-09-01",
    );
    assert.equal(
      resolveUrl("https://graph.microsoft.com/v1.0/me", cloud, () => "x"),
      "https://graph.microsoft.com/v1.0/me",
    );
  });
  it("rejects what is not an http(s) URL", () => {
    assert.throws(() => resolveUrl("file:///etc/passwd", cloud, () => ""), /must be http/);
  });
  it("parses key=value and JSON, and says what is wrong", () => {
    assert.deepEqual(parseKeyValues(["a=1", "b=x=y", '{"c": 2}'], "--headers"), { a: "1", b: "x=y", c: "2" });
    assert.throws(
      () => parseKeyValues(["novalue"], "--headers"),
      (e: Error & { code?: string }) =>
        e.code === "usage" && /--headers: 'novalue' is not key=value/.test(e.message),
    );
    assert.throws(() => parseKeyValues(["{bad"], "--uri-parameters"), /not valid JSON/);
  });
});
