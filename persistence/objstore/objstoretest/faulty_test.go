package objstoretest_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/morax-dev/morax/persistence/objstore"
	"github.com/morax-dev/morax/persistence/objstore/objstoretest"
)

func newFS(t *testing.T) *objstore.FS {
	t.Helper()
	s, err := objstore.NewFS(t.TempDir())
	if err != nil {
		t.Fatalf("NewFS: %v", err)
	}
	return s
}

func TestFaultyWithoutFaultsIsTransparent(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store { return objstoretest.NewFaulty(newFS(t)) })
}

func TestFaultyFailures(t *testing.T) {
	f := objstoretest.NewFaulty(newFS(t))
	ctx := t.Context()
	f.SetFailures(objstoretest.OpPut|objstoretest.OpGet, 1)
	if err := f.Put(ctx, "k", []byte("x")); !errors.Is(err, objstoretest.ErrInjected) {
		t.Fatalf("Put = %v, want ErrInjected", err)
	}
	if _, err := f.Get(ctx, "k", 0, -1); !errors.Is(err, objstoretest.ErrInjected) {
		t.Fatalf("Get = %v, want ErrInjected", err)
	}
	// Operations outside the set pass through.
	if err := f.Delete(ctx, "k"); err != nil {
		t.Fatalf("Delete = %v", err)
	}
	f.SetFailures(0, 0)
	// The failed Put stored nothing.
	if _, err := f.Get(ctx, "k", 0, -1); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Get after a failed Put = %v, want ErrNotFound", err)
	}
	if got, want := f.Calls(objstoretest.OpAll), int64(4); got != want {
		t.Errorf("Calls = %d, want %d", got, want)
	}
	if got := f.Injected(objstoretest.OpPut | objstoretest.OpGet); got != 2 {
		t.Errorf("Injected = %d, want 2", got)
	}

	// A failure after the Put landed: error, yet the object exists.
	f.SetPutLands(true)
	f.SetFailures(objstoretest.OpPut, 1)
	if err := f.Put(ctx, "landed", []byte("x")); !errors.Is(err, objstoretest.ErrInjected) {
		t.Fatalf("Put = %v, want ErrInjected", err)
	}
	f.Heal()
	if err := f.Put(ctx, "landed", []byte("x")); !errors.Is(err, objstore.ErrExists) {
		t.Fatalf("retry of a landed Put = %v, want ErrExists", err)
	}
}

func TestFaultyProbability(t *testing.T) {
	f := objstoretest.NewFaulty(newFS(t))
	f.SetFailures(objstoretest.OpGet, 0.3)
	const n = 2000
	failed := 0
	for range n {
		_, err := f.Get(t.Context(), "missing", 0, -1)
		switch {
		case errors.Is(err, objstoretest.ErrInjected):
			failed++
		case !errors.Is(err, objstore.ErrNotFound):
			t.Fatalf("Get = %v", err)
		}
	}
	// Binomial(2000, 0.3): mean 600, sd about 20.5; ±6 sd never fails by chance.
	if failed < 477 || failed > 723 {
		t.Fatalf("%d of %d calls failed, want about 30%%", failed, n)
	}
	if f.Injected(objstoretest.OpGet) != int64(failed) {
		t.Fatalf("Injected = %d, counted %d", f.Injected(objstoretest.OpGet), failed)
	}
}

func TestFaultyDelay(t *testing.T) {
	f := objstoretest.NewFaulty(newFS(t))
	f.SetDelay(objstoretest.OpGet, 50*time.Millisecond)
	start := time.Now()
	if _, err := f.Get(t.Context(), "missing", 0, -1); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Get = %v", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("Get took %v, want at least the 50ms delay", d)
	}
	// Puts are not delayed.
	start = time.Now()
	if err := f.Put(t.Context(), "k", nil); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 45*time.Millisecond {
		t.Logf("Put took %v (slow disk?)", d)
	}
	// A context that ends during the delay ends the call.
	f.SetDelay(objstoretest.OpAll, time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := f.Get(ctx, "k", 0, -1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("delayed Get past its deadline = %v, want DeadlineExceeded", err)
	}
}

// TestFaultyConcurrentSettings changes settings while operations run; its
// value is under -race.
func TestFaultyConcurrentSettings(t *testing.T) {
	f := objstoretest.NewFaulty(newFS(t))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := f.Get(t.Context(), "k", 0, -1)
				if err != nil && !errors.Is(err, objstoretest.ErrInjected) && !errors.Is(err, objstore.ErrNotFound) {
					t.Errorf("Get = %v", err)
					return
				}
			}
		})
	}
	// Keep changing settings until the readers have really overlapped them.
	for i := 0; i < 200 || (f.Calls(objstoretest.OpGet) < 200 && !t.Failed()); i++ {
		f.SetFailures(objstoretest.OpGet, float64(i%3)/2)
		f.SetDelay(objstoretest.OpGet, time.Duration(i%2)*time.Microsecond)
		f.SetPutLands(i%2 == 0)
	}
	close(stop)
	wg.Wait()
}

func TestOpString(t *testing.T) {
	if got := (objstoretest.OpPut | objstoretest.OpList).String(); got != "put|list" {
		t.Errorf("String = %q", got)
	}
	if got := objstoretest.Op(0).String(); got != "none" {
		t.Errorf("String = %q", got)
	}
}
