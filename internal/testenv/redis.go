package testenv

import (
	"bufio"
	"net"
	"strconv"
	"testing"
	"time"
)

// Redis starts a redis-server for the test on a free loopback port, with
// args added to its command line (e.g. "--requirepass", "pw"), and returns
// its address. Kill it and StartRedis again on the same port to model an
// outage that ends.
func Redis(t testing.TB, args ...string) (addr string, p *Process) {
	t.Helper()
	port := FreePort(t)
	return Addr(port), StartRedis(t, port, args...)
}

// StartRedis starts a redis-server on 127.0.0.1:port, with args added to
// its command line, and waits until it answers. It keeps nothing on disk:
// one started again on the same port begins empty, as a Redis without
// persistence does after a restart.
func StartRedis(t testing.TB, port int, args ...string) *Process {
	t.Helper()
	path := Binary(t, "redis-server", "ENTREPOT_REDIS_SERVER", "apt-get install redis-server")
	argv := append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir(),
	}, args...)
	return Start(t, path, argv, nil, redisReady(Addr(port)))
}

// redisReady is a ready function that succeeds once the server at addr
// answers a PING (a PONG, or the refusal of a server that wants a
// password: either way it serves).
func redisReady(addr string) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte("PING\r\n")); err != nil {
			return err
		}
		_, err = bufio.NewReader(c).ReadString('\n')
		return err
	}
}
