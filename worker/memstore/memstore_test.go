package memstore

import (
	"testing"

	"github.com/heraldhq/herald/worker"
	"github.com/heraldhq/herald/worker/storetest"
)

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) worker.Store { return New(nil) })
}
