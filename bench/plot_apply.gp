# streamtrain_bench_apply (bench/README.md): coordinates applied per second, per model and
# value encoding, against the ratio. Redraw from the committed CSV:
#   gnuplot -e "csv='bench/results/apply.csv'; png='bench/results/apply.png'" bench/plot_apply.gp
if (!exists("csv")) csv = 'bench/results/apply.csv'
if (!exists("png")) png = 'bench/results/apply.png'
set terminal pngcairo size 1000,500 font ',10'
set output png
set datafile separator ','
set grid
set logscale xy
set xlabel 'ratio k / N (%)'
set ylabel 'million coordinates per second'
set key outside right
set title 'ApplyDelta (solid) and DecodeDelta + ApplyDelta (dashed); target 50M/s'
only(m, e, col) = (strcol(1) eq m && strcol(4) eq e) ? column(col) / 1e6 : NaN
plot for [m in 'lenet5 resnet18 resnet50'] for [e in 'f32_new f16_increment'] csv skip 1 \
       using ($3*100):(only(m, system(sprintf("echo %s | tr _ ' '", e)), 8)) with linespoints title m.' '.e, \
     for [m in 'lenet5 resnet18 resnet50'] for [e in 'f32_new f16_increment'] csv skip 1 \
       using ($3*100):(only(m, system(sprintf("echo %s | tr _ ' '", e)), 11)) with linespoints dt 2 notitle, \
     50 with lines lc 'black' dt 3 title 'target 50M/s'
