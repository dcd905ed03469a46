// Collects the microphone's 128-sample render quanta into frames of `frameSize` samples (mono,
// float32, at the AudioContext's rate) and posts each frame to the page, which sends it as one
// binary WebSocket message: ~50 ms per message instead of 375 tiny ones a second.
class ZooCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.size = options.processorOptions.frameSize;
    this.buf = new Float32Array(this.size);
    this.n = 0;
  }
  process(inputs) {
    const input = inputs[0];
    if (input && input.length) {
      const ch = input[0];
      for (let i = 0; i < ch.length; i++) {
        // several channels: their mean, as the server's file reader does
        let v = ch[i];
        for (let c = 1; c < input.length; c++) v += input[c][i];
        this.buf[this.n++] = v / input.length;
        if (this.n === this.size) {
          this.port.postMessage(this.buf.buffer, [this.buf.buffer]);
          this.buf = new Float32Array(this.size);
          this.n = 0;
        }
      }
    }
    return true;
  }
}
registerProcessor("zoo-capture", ZooCapture);
