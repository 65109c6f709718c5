package bus

import (
	"testing"

	"github.com/nats-io/nkeys"
)

// What deploy spends per bus user: minting one (a user nkey and an
// ed25519 signature), and checking one it keeps.
func BenchmarkMint(b *testing.B) {
	key, err := nkeys.CreateAccount()
	if err != nil {
		b.Fatal(err)
	}
	akp, _ := nkeys.CreateAccount()
	account, _ := akp.PublicKey()
	m := &Minter{Key: key, Account: account}
	pub := []string{"shop.>", "dlq.shop.thumbs", "$JS.API.CONSUMER.MSG.NEXT.shop.thumbs-1", "$JS.API.CONSUMER.INFO.shop.thumbs-1", "$JS.ACK.shop.thumbs-1.>", "$JS.ACK.*.*.shop.thumbs-1.>"}
	sub := []string{"_INBOX_shop_thumbs.>"}
	creds, err := m.Mint("u", pub, sub)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("mint", func(b *testing.B) {
		for b.Loop() {
			if _, err := m.Mint("u", pub, sub); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("keep", func(b *testing.B) {
		for b.Loop() {
			if !m.Current(creds, pub, sub) {
				b.Fatal("not kept")
			}
		}
	})
}
