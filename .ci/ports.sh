# Sourced by .ci/services and .ci/mongodb: whether a loopback port accepts connections, and
# waiting until it does.

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port NAME PORT: up to 60 s; fails (after saying so) if the port never opens.
wait_port() {
  local name=$1 port=$2
  for _ in $(seq 1 120); do
    port_open "$port" && { echo "services: $name is up on 127.0.0.1:$port"; return 0; }
    sleep 0.5
  done
  echo "services: $name did not come up on 127.0.0.1:$port" >&2
  return 1
}
