/**
 * `-o table` columns of `account list` (az's transformer), for the frame and the `az` shim
 * alike. With several identities signed in, a `User` column says whose each row is (az has one
 * identity at a time, so it never needs one).
 */
export function accountTable(value: unknown): Record<string, unknown>[] {
  const list = value as Record<string, unknown>[];
  const userOf = (e: Record<string, unknown>): unknown => (e.user as { name?: unknown } | undefined)?.name;
  const several = new Set(list.map(userOf)).size > 1;
  return list.map((e) => ({
    Name: e.name,
    CloudName: e.cloudName,
    SubscriptionId: e.id,
    TenantId: e.tenantId,
    State: e.state,
    IsDefault: e.isDefault,
    ...(several ? { User: userOf(e) } : {}),
  }));
}
