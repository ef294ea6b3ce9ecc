// Microphone capture inside the audio graph: the AudioContext runs at 8 kHz (the browser
// resamples the microphone), so this only cuts 20 ms frames of 16-bit PCM and posts them.
class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.frame = new Int16Array(160);
    this.n = 0;
  }
  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (ch) {
      for (let i = 0; i < ch.length; i++) {
        const v = Math.max(-1, Math.min(1, ch[i]));
        this.frame[this.n++] = v < 0 ? v * 0x8000 : v * 0x7fff;
        if (this.n === 160) {
          this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
          this.frame = new Int16Array(160);
          this.n = 0;
        }
      }
    }
    return true;
  }
}
registerProcessor('callfunnel-capture', Capture);
