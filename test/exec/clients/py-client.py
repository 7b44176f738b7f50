# Debian's azure-identity (python3-azure), run inside `azkeep exec` by test/exec/exec.test.ts:
# ManagedIdentityCredential or DefaultAzureCredential gets a token for the audience in argv[2].
import json, sys, time
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

kind, scope = sys.argv[1], sys.argv[2]
cred = ManagedIdentityCredential() if kind == "mi" else DefaultAzureCredential()
started = time.time()
try:
    t = cred.get_token(scope)
    print(json.dumps({"ok": True, "token": t.token, "expires_on": t.expires_on}))
except Exception as e:  # noqa: BLE001
    print(json.dumps({"ok": False, "s": time.time() - started, "type": type(e).__name__, "message": str(e)}))
