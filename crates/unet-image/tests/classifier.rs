//! The FD-FMNIST classifier and the full-size `ddpm` count.

use tch::{nn, Device, Kind, Tensor};
use unet_image::classifier::{fd_fmnist, to_model_range, FmnistClassifier};
use unet_image::data::fashion_mnist::{FashionMnist, Split};
use unet_image::diffusers::DiffusersUNet;
use unet_image::models::ddpm;

#[test]
fn full_size_ddpm_has_the_published_parameter_count() {
    // Ho et al. 2020: 35.7M; diffusers' UNet2DModel on google/ddpm-cifar10-32: 35,746,307.
    let vs = nn::VarStore::new(Device::Cpu);
    DiffusersUNet::new(&vs.root(), &ddpm::full().unwrap()).unwrap();
    assert_eq!(unet_image::parameter_count(&vs), 35_746_307);
}

#[test]
fn the_fd_fmnist_classifier_learns_and_separates_real_from_noise() {
    tch::set_num_threads(1);
    let train = FashionMnist::sample(Split::Train).unwrap();
    let test = FashionMnist::sample(Split::Test).unwrap();
    let (clf, acc) = FmnistClassifier::load_or_train(None, &train, &test, 150).unwrap();
    assert!(acc > 0.6, "accuracy {acc} on the embedded test sample");
    let real_a = to_model_range(&train).narrow(0, 0, 200);
    let real_b = to_model_range(&test);
    let noise = Tensor::rand([200, 1, 28, 28], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    let (fd_real, fd_noise) =
        (fd_fmnist(&clf, &real_a, &real_b).unwrap(), fd_fmnist(&clf, &noise, &real_b).unwrap());
    assert!(fd_real * 5.0 < fd_noise, "real {fd_real} vs noise {fd_noise}");
    assert!(clf.features(&Tensor::zeros([1, 1, 32, 32], (Kind::Float, Device::Cpu))).is_err());
}
