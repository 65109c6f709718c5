package relay

import "strings"

// Rights are what a bus user may do: the NATS subjects it may publish and
// subscribe to, nothing else. Inbox is the prefix of its reply subjects,
// which its client must use (nats.CustomInboxPrefix): its own, so it
// reads no other client's replies.
type Rights struct {
	Pub   []string
	Sub   []string
	Inbox string
}

// The users deploy mints for a workload are kept in the Secret
// CredsSecret(workload) of its release: its relay's under RelayCredsKey,
// each schedule's CronJob's under ScheduleCredsKey(schedule).
const RelayCredsKey = "relay.creds"

// ScheduleCredsKey is the key of a schedule's user in its workload's
// Secret.
func ScheduleCredsKey(s Schedule) string { return s.Name + ".creds" }

// CredsSecret is the name of the Secret of a workload's bus users.
func CredsSecret(workload string) string { return workload + "-nats" }

// Inbox is the prefix of the reply subjects of the bus user name of
// stream.
func Inbox(stream, name string) string {
	return "_INBOX_" + strings.NewReplacer(".", "_", "*", "_", ">", "_").Replace(stream+"_"+name)
}

// RelayRights are exactly what the relay of a workload with plan needs:
// store events and replies under the project's subjects (its sink), take
// events from its own consumers (pull, ack, read their state), and store
// its own dead letters. It may create, change, purge or delete no stream
// and no consumer, and read nothing of another stream or consumer. The
// JetStream API subjects are the nats-server's (server/jetstream_api.go).
func RelayRights(plan *Plan, workload string) Rights {
	r := Rights{Inbox: Inbox(plan.Stream, workload)}
	r.Pub = append(r.Pub, plan.Stream+".>", DeadLetterSubject(plan.Stream, workload))
	for _, t := range plan.Triggers {
		s, c := plan.Stream, t.Consumer
		r.Pub = append(r.Pub,
			"$JS.API.CONSUMER.MSG.NEXT."+s+"."+c,
			"$JS.API.CONSUMER.INFO."+s+"."+c,
			// An ack is a message to the reply subject of the event: in the
			// server's first format, and in its second (domain and account
			// hash first).
			"$JS.ACK."+s+"."+c+".>",
			"$JS.ACK.*.*."+s+"."+c+".>")
	}
	r.Sub = []string{r.Inbox + ".>"}
	return r
}

// ScheduleRights are what a schedule's CronJob needs: store its tick.
func ScheduleRights(stream string, s Schedule) Rights {
	r := Rights{Inbox: Inbox(stream, s.Name), Pub: []string{s.Subject}}
	r.Sub = []string{r.Inbox + ".>"}
	return r
}
