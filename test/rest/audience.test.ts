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
    assert.equal(
      chooseAudience("https://myapi.azurewebsites.net/x", cloud, "api://1234")?.resource,
      "api://1234",
    );
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
    assert.throws(() => parseKeyValues(["novalue"], "--headers"), /--headers: 'novalue' is not key=value/);
    assert.throws(() => parseKeyValues(["{bad"], "--uri-parameters"), /not valid JSON/);
  });
});
