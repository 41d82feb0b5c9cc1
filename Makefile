# The README's verbs. Each one first makes sure the Debian packages are there.
BUILD ?= build
JOBS  ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build run test bench bench-windows bench-fancy bench-keypoints bench-regularize bench-pose bench-norm format clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

configure: deps $(BUILD)/build.ninja

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# The main job: the pooling shoot-out on Fashion-MNIST (about 5 minutes on 2 cores).
run: build
	$(BUILD)/bin/fancy shootout --out runs/shootout

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: build
	$(BUILD)/bench/bench_pool

bench-windows: build
	FANCY_LIBRARY=$(BUILD)/lib/libfancy.so /usr/bin/python3 bench/bench_pool_windows.py

bench-fancy: build
	FANCY_LIBRARY=$(BUILD)/lib/libfancy.so /usr/bin/python3 bench/bench_fancy_pool.py

# COCO keypoint evaluation end to end on a generated 5000-image pair, 1 and 2 threads.
bench-keypoints: build
	/usr/bin/python3 bench/bench_keypoints.py --build $(BUILD)

# Group lasso penalty + gradient over ResNet-50's 25.5M weights against abs().sum().
bench-regularize: build
	$(BUILD)/bench/bench_regularize

# Stacked hourglass (2 stacks, F 128, 128 px) training and inference, C++ vs Python PyTorch.
bench-pose: build
	/usr/bin/python3 bench/bench_pose.py --build $(BUILD)

# fancy.batch_norm_relu against batch_norm + relu_ (the hourglass's shapes), 1 and 2 threads.
bench-norm: build
	FANCY_LIBRARY=$(BUILD)/lib/libfancy.so /usr/bin/python3 bench/bench_norm.py

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf $(BUILD)
