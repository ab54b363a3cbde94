// One-shot replica-set initialisation for docker compose (idempotent: a second run is a no-op).
// The member host is the compose service name, so containers connect with ?replicaSet=rs0;
// from the host use mongodb://127.0.0.1:27017/?directConnection=true.
try {
  const status = rs.status();
  print(JSON.stringify({ event: "replica_set_exists", set: status.set }));
} catch (e) {
  rs.initiate({ _id: "rs0", members: [{ _id: 0, host: "mongo:27017" }] });
  print(JSON.stringify({ event: "replica_set_initiated", set: "rs0" }));
}
let waited = 0;
while (!db.hello().isWritablePrimary) {
  if (waited > 60000) { throw new Error("replica set did not elect a primary within 60 s"); }
  sleep(500);
  waited += 500;
}
print(JSON.stringify({ event: "replica_set_primary_ready" }));
