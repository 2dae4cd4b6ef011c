// A primary that stops answering without closing anything: a paused VM or a SIGSTOPped
// postmaster (the relay's stall(): connections accepted, nothing forwarded), a partition
// (drop(): bytes thrown away), a half-open connection (stall_replies(): requests arrive,
// answers never come back). The fault relay sits between pgsidecar and the primary, so the
// cluster itself is never disturbed and this file runs beside the others.
//
// 20 readers and 4 writers run through pgsidecar for 5 s of fault; what must hold is in
// failover_load.h (the primary is declared down within suspect_after + timeout x
// failures_before_down).
//
// Cost: about 8 s per fault (three faults: about 25 s).
#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <string>

#include "tests/integration/failover_load.h"
#include "tests/support/fault_relay.h"

using namespace std::chrono_literals;
using namespace pgsidecar::testing;

TEST_CASE("a hung, partitioned or half-open primary: reads go on, writes end within write_wait") {
  Cluster& cluster = Cluster::shared();
  prepare_load_tables(cluster);
  FaultRelay relay(cluster.host(), cluster.primary_port());
  std::string fault_name = "stall";
  std::function<void()> fault = [&] { relay.stall(); };
  SUBCASE("the primary stops answering (a paused VM, SIGSTOP)") {}
  SUBCASE("a partition drops every packet") {
    fault_name = "drop";
    fault = [&] { relay.drop(); };
  }
  SUBCASE("a half-open connection: requests arrive, replies never come back") {
    fault_name = "stall_replies";
    fault = [&] { relay.stall_replies(); };
  }
  CAPTURE(fault_name);

  const LoadPlan plan = hang_plan(5s);
  ProxyProcess proxy;
  start_failover_proxy(proxy, cluster, hang_config(cluster, cluster.url(relay.port())));

  const std::string run_id = fault_name + "-" + std::to_string(Clock::now().time_since_epoch().count());
  const LoadOutcome out =
      run_load_through_fault(app_conninfo(proxy, cluster), run_id, plan, fault, [&] { relay.pass(); });
  check_load_outcome(out, plan, fault_name, cluster.primary_conninfo(), run_id);
}
