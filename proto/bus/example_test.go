package bus_test

import (
	"fmt"

	"github.com/honeybee/core/proto/bus"
)

func ExampleEscapeToken() {
	for _, pot := range []string{"cowrie-01", "a.b", "*", "", "café"} {
		tok := bus.EscapeToken(pot)
		back, _ := bus.UnescapeToken(tok)
		fmt.Printf("%q -> %s -> %q\n", pot, tok, back)
	}
	// Output:
	// "cowrie-01" -> cowrie-01 -> "cowrie-01"
	// "a.b" -> a=2Eb -> "a.b"
	// "*" -> =2A -> "*"
	// "" -> = -> ""
	// "café" -> caf=C3=A9 -> "café"
}

func ExampleContract() {
	c, err := bus.New("honeybee")
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Event(42, "cowrie.01"))
	fmt.Println(c.Events(), "in stream", c.EventsStream())
	fmt.Println(c.Pot(42, "cowrie.01"))
	fmt.Println(c.Node(42, bus.LifecycleRegistered))
	fmt.Println(c.Command(42), c.Broadcast())
	fmt.Println(c.NodesBucket(), bus.NodeKey(42), c.PotsBucket(), bus.PotKey(42, "cowrie.01"))

	_, err = bus.New("honey.bee")
	fmt.Println(err)
	// Output:
	// honeybee.events.42.cowrie=2E01
	// honeybee.events.> in stream HONEYBEE_EVENTS
	// honeybee.pots.42.cowrie=2E01.status
	// honeybee.nodes.42.registered
	// honeybee.cmd.42 honeybee.cmd.broadcast
	// honeybee_nodes 42 honeybee_pots 42.cowrie=2E01
	// invalid bus prefix: "honey.bee": use letters, digits, '-' and '_'
}
