// amqp091-bench: the Go reference client (github.com/rabbitmq/amqp091-go)
// in courier-bench's AMQP scenarios, with the same rules as the Rust
// workers: publish with confirms keeping at most -window unconfirmed (the
// clock runs from the first measured publish to the last confirm, after a
// confirmed warm-up), or consume a prefilled queue with prefetch -prefetch
// and a manual ack per message (the clock runs from the first delivery to
// the last ack). Prints one JSON line like the Rust workers' results.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

type result struct {
	Messages        uint64  `json:"messages"`
	ProcessMessages uint64  `json:"process_messages"`
	ElapsedS        float64 `json:"elapsed_s"`
	Note            string  `json:"note,omitempty"`
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "amqp091-bench: "+format+"\n", args...)
	os.Exit(1)
}

func warmup(n uint64) uint64 {
	w := n / 10
	if w < 1 {
		w = 1
	}
	if w > 1000 {
		w = 1000
	}
	return w
}

// publish keeps at most window unconfirmed; confirms is the one listener
// registered for the channel (a second NotifyPublish would leave the first
// undrained and block the library: amqp091-go #10).
func publish(ch *amqp.Channel, confirms chan amqp.Confirmation, queue string, body []byte, n uint64, window int) {
	outstanding := 0
	ctx := context.Background()
	wait := func() {
		c, ok := <-confirms
		if !ok {
			fail("confirm channel closed")
		}
		if !c.Ack {
			fail("publish %d nacked", c.DeliveryTag)
		}
		outstanding--
	}
	for i := uint64(0); i < n; i++ {
		if outstanding >= window {
			wait()
		}
		err := ch.PublishWithContext(ctx, "", queue, false, false, amqp.Publishing{Body: body})
		if err != nil {
			fail("publish: %v", err)
		}
		outstanding++
	}
	for outstanding > 0 {
		wait()
	}
}

func main() {
	url := flag.String("url", "amqp://guest:guest@127.0.0.1:5672/", "broker URL")
	scenario := flag.String("scenario", "publish", "publish or consume")
	queue := flag.String("queue", "bench", "queue")
	size := flag.Int("size", 16, "payload bytes")
	msgs := flag.Uint64("msgs", 10000, "messages in the measured section")
	window := flag.Int("window", 1000, "unconfirmed publishes at most")
	prefetch := flag.Int("prefetch", 1000, "consumer prefetch")
	flag.Parse()

	conn, err := amqp.Dial(*url)
	if err != nil {
		fail("dial: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		fail("channel: %v", err)
	}
	if _, err := ch.QueueDeclare(*queue, false, false, false, false, nil); err != nil {
		fail("queue.declare: %v", err)
	}
	out := result{Note: "amqp091-go v1.10.0, one connection, one channel"}
	switch *scenario {
	case "publish":
		if err := ch.Confirm(false); err != nil {
			fail("confirm.select: %v", err)
		}
		body := make([]byte, *size)
		confirms := ch.NotifyPublish(make(chan amqp.Confirmation, *window+1))
		w := warmup(*msgs)
		publish(ch, confirms, *queue, body, w, *window)
		start := time.Now()
		publish(ch, confirms, *queue, body, *msgs, *window)
		out.ElapsedS = time.Since(start).Seconds()
		out.Messages = *msgs
		out.ProcessMessages = *msgs + w
	case "consume":
		if err := ch.Qos(*prefetch, 0, false); err != nil {
			fail("basic.qos: %v", err)
		}
		deliveries, err := ch.Consume(*queue, "", false, false, false, false, nil)
		if err != nil {
			fail("basic.consume: %v", err)
		}
		var start time.Time
		var got uint64
		timeout := time.After(120 * time.Second)
		for got < *msgs {
			select {
			case d, ok := <-deliveries:
				if !ok {
					fail("deliveries closed after %d", got)
				}
				if got == 0 {
					start = time.Now()
				}
				if err := d.Ack(false); err != nil {
					fail("ack: %v", err)
				}
				got++
			case <-timeout:
				fail("timed out with %d of %d", got, *msgs)
			}
		}
		out.ElapsedS = time.Since(start).Seconds()
		out.Messages = *msgs - 1
		out.ProcessMessages = *msgs
	default:
		fail("unknown scenario %q", *scenario)
	}
	line, _ := json.Marshal(out)
	fmt.Println(string(line))
}
