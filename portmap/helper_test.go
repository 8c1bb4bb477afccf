package portmap

// The test binary doubles as a small port-mapping program: run with helperEnv set (inside a
// test host's network namespace, through nsenter), it maps ports as a client would, prints
// what it got and each renewal on stdout, and removes its mappings on SIGTERM.

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

const (
	helperEnv     = "PORTMAP_TEST_HELPER" // the method: "natpmp" or "upnp"
	helperTCP     = "PORTMAP_TEST_TCP"
	helperUDP     = "PORTMAP_TEST_UDP"
	helperLife    = "PORTMAP_TEST_LIFETIME"
	helperGateway = "PORTMAP_TEST_GATEWAY" // optional
)

func TestMain(m *testing.M) {
	if method := os.Getenv(helperEnv); method != "" {
		os.Exit(runHelper(method))
	}
	os.Exit(m.Run())
}

func runHelper(method string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	l := logrus.New()
	l.SetOutput(os.Stderr)
	l.SetLevel(logrus.DebugLevel)
	cfg := Config{Log: logrus.NewEntry(l), Description: "portmap-test"}
	switch method {
	case "natpmp":
		cfg.Method = NATPMP
	case "upnp":
		cfg.Method = UPnP
	}
	tcp, _ := strconv.Atoi(os.Getenv(helperTCP))
	udp, _ := strconv.Atoi(os.Getenv(helperUDP))
	cfg.TCPPort, cfg.UDPPort = uint16(tcp), uint16(udp)
	cfg.Lifetime, _ = time.ParseDuration(os.Getenv(helperLife))
	if gw := os.Getenv(helperGateway); gw != "" {
		cfg.Gateway = netip.MustParseAddr(gw)
	}
	m, err := Start(ctx, cfg)
	if err != nil {
		fmt.Printf("error %v\n", err)
		return 1
	}
	st := m.Status()
	fmt.Printf("mapped %v %v tcp=%d udp=%d\n", st.Method, st.External, st.TCP, st.UDP)
	renewals := 0
	tk := time.NewTicker(20 * time.Millisecond)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			m.Close()
			fmt.Println("closed")
			return 0
		case <-tk.C:
			if st := m.Status(); st.Renewals != renewals {
				renewals = st.Renewals
				fmt.Printf("renewals=%d tcp=%d udp=%d\n", renewals, st.TCP, st.UDP)
			}
		}
	}
}
